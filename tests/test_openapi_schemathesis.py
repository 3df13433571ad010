"""Schemathesis over /api/openapi.json against `tiaojie serve` with the admin token: the
server and its OpenAPI document agree, and no generated request gets a 5xx.

Every operation gets MAX_EXAMPLES generated requests (valid and invalid bodies, path
parameters, headers), each checked by schemathesis: no server error, status codes,
content types, headers and bodies as documented, valid data accepted, invalid refused.
Then a bounded stateful run follows the document's links (create a room, invite,
revoke, end it). The whole module takes well under a minute.
"""

from __future__ import annotations

import json
import shutil
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support.serve import ServeProcess
from tests.test_agreements import shared_keys  # noqa: F401  (the fixture: keys made once)
from tiaojie.server.openapi import build_spec

ADMIN = "test-admin-token-for-schemathesis-0123456789"
MAX_EXAMPLES = 25

#: What a valid request may get besides 2xx: the caller is not allowed (401, 403), the
#: thing is not there or not the caller's (404), the state forbids it now (409), the
#: room has ended (410).
ACCEPTED_REFUSALS = [401, 403, 404, 409, 410]

CONFIG = {
    "headers": {"Authorization": f"Bearer {ADMIN}"},
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "checks": {
        "positive_data_acceptance": {"expected-statuses": ["2XX", *ACCEPTED_REFUSALS]},
        # DELETE /api/rooms/{id} ends a room; its record stays readable (status "ended")
        # for the mediator and the archive, by design.
        "use_after_free": {"enabled": False},
    },
    "operations": [
        {
            # /api/me describes an invite token; the admin token gets 400 (documented)
            "include-path": "/api/me",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2XX", 400, 401]}},
        },
        {
            # generated logins fail (401), until their login and the address are locked
            # (429, documented; server/accounts/lockout.py)
            "include-name": "POST /api/session",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2XX", 401, 429]}},
        },
        {
            # What the document cannot say: the dispute types and regions a case may name
            # are configured (GET /api/case-options), an attachment's bytes must be the
            # photo or PDF they claim, a transition needs what its action needs (a reason
            # to return), regions nest by code and a number format must format; and a
            # body (a region tree) may be too large to read (413).
            "include-path-regex": "^/api/(cases|case-config)",
            "include-method-regex": "^(POST|PUT)$",
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2XX", *ACCEPTED_REFUSALS, 400, 413, 415]
                },
                "negative_data_rejection": {
                    "expected-statuses": [400, 401, 403, 404, 409, 413, 415, 422]
                },
            },
        },
        {
            # What the document cannot say: a period's `from` may not be after its `to`.
            "include-path-regex": "^/api/statistics",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2XX", 400, 401, 403]}},
        },
        {
            # Bookings: what the document cannot say (a weekly rule names its weekday, a
            # rule's start is before its end, staff name the case and party they book
            # for, a slot must be free, a date range is at most 62 days).
            "include-path-regex": "^/api/(availability|bookings|calendar)",
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2XX", *ACCEPTED_REFUSALS, 400, 415]
                },
            },
        },
    ],
    # Sequences of valid requests: schemathesis's negative data does not draw the same way
    # twice in a stateful run (hypothesis then stops with FlakyStrategyDefinition, as soon
    # as POST .../invites gained an optional field); every operation still gets negative
    # data in test_every_operation_as_documented.
    "phases": {"stateful": {"max-steps": 20, "generation": {"mode": "positive"}}},
}


@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_keys):  # noqa: F811
    data = tmp_path_factory.mktemp("schemathesis") / "data"
    shutil.copytree(shared_keys, data / "keys", ignore=shutil.ignore_patterns(".lock"))
    # hundreds of generated logins, accounts and password changes: argon2 at its smallest
    # cost (what is checked here does not depend on it)
    server = ServeProcess(data, ADMIN, cheap_passwords=True)
    yield server
    server.stop()
    log = server.log()
    assert "Traceback" not in log, log


#: The document the server serves at /api/openapi.json (checked below to be the same).
schema = schemathesis.openapi.from_dict(build_spec(), config=schemathesis.Config.from_dict(CONFIG))


def test_the_served_document_is_the_one_tested(served) -> None:
    with urllib.request.urlopen(served.url + "/api/openapi.json") as response:
        assert json.load(response) == json.loads(json.dumps(build_spec()))


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_every_operation_as_documented(case, served) -> None:
    case.call_and_validate(base_url=served.url)


def test_stateful_sequences(served) -> None:
    """Sequences that follow the links schemathesis infers between operations (the room a
    POST made, then its invites, its recording, its end), with the same checks."""

    # Not in sequences: what answers the same request differently the second time for
    # good reason (a login is taken once; failed logins end in a lockout), which
    # hypothesis takes for a flaky test. Each is tested on its own above.
    machine = (
        schema.exclude(path="/api/accounts", method="POST")
        .exclude(path="/api/session", method="POST")
        .as_state_machine()
    )

    class Live(machine):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, str]:
            return {"base_url": served.url}

    Live.run(
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
