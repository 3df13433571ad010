"""How `make test` shares the suite between two pytest-xdist workers (`-n 2 --dist loadgroup`).

What it holds today:

- `TOGETHER`: the test modules that run one after another on one worker, never beside
  each other: real browsers (Chromium's processes, Firefox), the network-namespace labs
  (tests/support/netlab.py adds and removes veth links in the root namespace while they
  run), `tiaojie serve` processes killed and restarted, several nodes, the recorder.
  Each of them wants more than one core at times and several wait on media timing; two
  of them side by side starved each other (docs/decisions.md).
- `LONG`: the longest of the other modules, handed out next, longest first, so that the
  run does not end with one worker still in a long module while the other has nothing
  left (measured with `--durations=0`; a module missing here only comes later).
- `TogetherScheduling`: xdist's scope scheduler with one work unit for all of `TOGETHER`
  (handed out first: it is the longest) and one unit per module for the rest, so a
  module's module-scoped fixtures (servers, browsers) start once.

Not xdist's own `xdist_group` mark: pytest 9.2 builds node ids as structured values, and
xdist 3.8 still groups by appending "@group" to the old `_nodeid` attribute, which pytest
no longer reads, so the mark is silently ignored (pytest-dev/pytest-xdist#1386).
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler.loadscope import LoadScopeScheduling

#: The work unit of the modules in TOGETHER.
UNIT = "together"

TOGETHER = frozenset(
    {
        # real browsers
        "test_browser_agreement.py",
        "test_browser_bookings.py",
        "test_browser_cases.py",
        "test_browser_caucus.py",
        "test_browser_chat.py",
        "test_browser_cluster.py",
        "test_browser_csp.py",
        "test_browser_device_check.py",
        "test_browser_firefox.py",
        "test_browser_join.py",
        "test_browser_media.py",
        "test_browser_passthrough.py",
        "test_browser_reconnect.py",
        "test_browser_recording.py",
        "test_browser_room_ui.py",
        "test_browser_staff.py",
        "test_browser_staff_cases.py",
        "test_browser_statistics.py",
        "test_browser_whole_case.py",
        # network namespaces (tests/support/netlab.py)
        "test_netlab.py",
        "test_network_impaired.py",
        "test_network_nat.py",
        # processes killed and started again; several nodes
        "test_restart.py",
        "test_cluster.py",
        "test_cluster_kill.py",
        "test_cluster_placement.py",
        # the recorder's segments against the wall clock
        "test_recording.py",
        "test_recording_api.py",
        "test_caucus_recording.py",
    }
)


#: Modules outside TOGETHER that take longest (a two-worker run, 2026-11-30), longest first.
LONG = (
    "tests/test_openapi_schemathesis.py",
    "tests/test_agreements.py",
    "tests/test_cases.py",
    "tests/test_rooms.py",
    "tests/test_tls.py",
    "tests/test_session_fixes.py",
    "tests/test_reconnect.py",
    "tests/test_archivist_tokens.py",
    "tests/test_api.py",
    "tests/test_archive_index.py",
    "tests/test_case_dossier.py",
    "tests/test_wheel.py",
    "tests/test_cli.py",
)


def unit_of(nodeid: str) -> str:
    """The work unit of a test: UNIT for the modules of TOGETHER, else its module."""
    module = nodeid.split("::", 1)[0]
    return UNIT if module.rsplit("/", 1)[-1] in TOGETHER else module


class TogetherScheduling(LoadScopeScheduling):
    """One unit for TOGETHER, handed out first, then LONG; one unit per module."""

    _ordered = False

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        if not self._ordered:  # the queue is complete by the first assignment
            for unit in reversed((UNIT, *LONG)):
                if unit in self.workqueue:
                    self.workqueue.move_to_end(unit, last=False)
            self._ordered = True
        super()._assign_work_unit(node)
