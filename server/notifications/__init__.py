"""Notifications (通知): the outbox in the database (tables.py, outbox.py), what each case
event queues (events.py), the texts (templates.py), the channels (channels/), the worker
that delivers (worker.py), the application's wiring (service.py) and the REST routes
(http.py, openapi.py). docs/NOTIFICATIONS.md describes them.

Kept import-free: server/db/schema.py imports `tables` from here.
"""
