"""bench/cases.py on 150 cases: its machinery, not its figures. The synthetic cases are
what the server would have made (every log verifies with the server's key, the numbers
continue after them), the queue's two-step query and its region ranges answer exactly
what the rows hold, and the benchmark's requests run against a server; on SQLite and on
PostgreSQL."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench.cases import OPEN, drive, fill, queue_questions
from bench.synthetic_cases import Synthetic
from tests.conftest import LiveServer, start_server
from tiaojie.server.cases import numbering

COUNT = 150  # + the one intake: every case on one page of the queue (200 at most)


@pytest.fixture
async def synthetic(database_url: str, tmp_path) -> AsyncIterator[tuple[LiveServer, Synthetic]]:
    data = tmp_path / "data"
    data.mkdir()
    found = await fill(database_url, data, COUNT)
    live = await start_server(data, database_url=database_url)
    yield live, found
    await live.close()
    await live.server.close()


async def every_case(srv: LiveServer) -> list[dict[str, Any]]:
    status, page = await srv.admin("GET", "/api/cases?limit=200")
    assert status == 200 and page["next"] is None
    return page["cases"]


def matches(case: dict[str, Any], query: str, now: int) -> bool:
    """What the queue should answer, worked out from a case's summary."""
    for term in query.split("&"):
        name, _, value = term.partition("=")
        codes = [node["code"] for node in case["region"]]
        if name == "state" and case["state"] not in value.split(","):
            return False
        if name == "dispute_type" and case["dispute_type"]["code"] != value:
            return False
        if name == "region" and not codes[-1].startswith(value):
            return False
        if name == "organisation_id" and case["holder_organisation_id"] != value:
            return False
        if name == "overdue" and case["overdue"] != (value == "true"):
            return False
    return True


async def test_synthetic_cases_are_real_cases_and_the_queue_finds_exactly_them(synthetic):
    srv, found = synthetic
    assert found.count == COUNT and sum(found.states.values()) == COUNT
    cases = await every_case(srv)
    assert len(cases) == COUNT
    assert {c["state"] for c in cases} == set(found.states)
    # Every log verifies with the server's key (a sample; each is made the same way).
    for case in random.Random(1).sample(cases, 12):
        status, log = await srv.admin("GET", f"/api/cases/{case['case_id']}/log")
        assert status == 200 and log["verification"]["authentic"], log["verification"]
        assert log["entries"][0]["event"]["actor"]["id"] == "bench-synthetic"
        assert log["entries"][-2]["event"]["to"] == case["state"]
    # The numbers continue after the synthetic ones.
    year = numbering.year_of(time.time())
    body = {
        "source": "grid_worker",
        "dispute_type": "labour",
        "region": found.tree[0]["children"][0]["children"][0]["code"],
        "description": "工地拖欠工资。",
        "parties": [{"role": "applicant", "name": "李建国", "phone": "13700001111"}],
    }
    status, receipt = await srv.admin("POST", "/api/cases", json=body)
    assert status == 201, receipt
    assert receipt["case_number"] == f"（{year}）人调字第{found.last_seq.get(year, 0) + 1:04d}号"
    # Each question the benchmark asks is answered with exactly the matching cases, newest
    # first (the second step reads the rows the first found in the index).
    cases = await every_case(srv)
    now = int(time.time())
    asked = 0
    for name, query in queue_questions(found, random.Random(5)) * 4:
        text = query()
        status, page = await srv.admin("GET", f"/api/cases?limit=200&{text}")
        assert status == 200, page
        expected = [c["case_id"] for c in cases if matches(c, text, now)]
        assert [c["case_id"] for c in page["cases"]] == expected, (name, text)
        asked += bool(expected)
    assert asked >= 8  # the questions found something: they were not all empty
    # Pages: two of 3 hold the first six, in order.
    status, first = await srv.admin("GET", f"/api/cases?limit=3&state={OPEN}")
    status, second = await srv.admin(
        "GET", f"/api/cases?limit=3&state={OPEN}&before={first['next']}"
    )
    open_ids = [c["case_id"] for c in cases if c["state"] in OPEN.split(",")]
    assert [c["case_id"] for c in first["cases"] + second["cases"]] == open_ids[:6]


async def test_the_benchmark_runs_its_requests(synthetic):
    srv, found = synthetic
    timings = await drive(str(srv.server.make_url("")).rstrip("/"), found, 2, srv.admin_token)
    assert timings.kinds["intake: POST /api/cases (staff)"] and all(
        len(values) >= 1 for values in timings.kinds.values()
    )
    assert len(timings.kinds) == 11  # intake, 6 questions, all of them, page 2, 2 progress
