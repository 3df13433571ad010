"""Password hashing at argon2id's smallest cost, for servers under test.

At production cost (RFC 9106: 64 MiB, 3 passes, 4 lanes) a hash or a check takes about
0.2 s of CPU, and the suite makes hundreds of them (minutes on a loaded machine). What
the tests check of accounts does not depend on the cost; that production hashes at
production cost is checked where `tiaojie create-admin` makes one (tests/test_accounts.py).

`python -m tests.support.cheap_passwords serve ...` is `tiaojie serve ...` at that cost.
"""

from __future__ import annotations

import runpy

from argon2 import PasswordHasher

from tiaojie.server.accounts import passwords


def hash_cheaply() -> PasswordHasher:
    """Make this process hash passwords at the smallest cost; return the production hasher."""
    production = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return production


if __name__ == "__main__":
    hash_cheaply()
    runpy.run_module("tiaojie", run_name="__main__")  # sys.argv[1:]: tiaojie's arguments
