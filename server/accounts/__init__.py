"""Staff accounts: organisations, accounts with roles, browser sessions, API keys, the
login lockout, and the audit log of every staff action that changes something.

- `model`: Organisation, Account (StaffRole), ApiKey; logins and their normal form;
- `passwords`: argon2id hashes (never a password stored or logged);
- `directory`: organisations and accounts in the database;
- `tokens`: browser sessions (cookie + CSRF token) and API keys, stored as sha256;
- `lockout`: failed logins per login name and per address, and the lockout;
- `audit`: the audit log (written in the transaction of an account change, or after a
  room change by `AuditProjection`, in the room's transaction), read by admins;
- `actor`: who is acting now (a context variable set per request and per event);
- `service`: `Accounts`, the operations the REST API and the CLI use;
- `middleware`, `http`, `schemas`, `openapi`: the REST API (docs/ACCOUNTS.md);
- `entry`: the invite a mediator enters their own room with;
- `bootstrap`: `tiaojie create-admin`.

Who may do what with rooms is decided in server/http_auth.py, with the Account this
package puts on the request. This package imports nothing that imports it back
(server/signalling.py imports `actor`), so its `__init__` stays empty.
"""
