"""Alembic's environment: runs the migrations on the connection that
tiaojie.server.db.migrate hands over (inside its transaction: a migration that fails
leaves the database as it was). There is no alembic.ini: use `tiaojie migrate`."""

from __future__ import annotations

from alembic import context


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the migrations with `tiaojie migrate`, not the alembic command")
    # Transactional on SQLite too: server/db/database.py begins the transactions itself.
    context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
