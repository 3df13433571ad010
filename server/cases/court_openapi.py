"""The OpenAPI description of the court hand-off and the follow-ups
(server/cases/court_http.py), merged into /api/openapi.json."""

from __future__ import annotations

from typing import Any

from tiaojie.server.cases.court_http import ANSWER, APPLICATION, FOLLOW_UP
from tiaojie.server.cases.openapi import _op, _path
from tiaojie.server.schemas import ID_PATTERN


def paths() -> dict[str, Any]:
    case_id = _path("case_id", ID_PATTERN)
    obj: dict[str, Any] = {"type": "object"}
    return {
        "/api/cases/{case_id}/court": {
            "parameters": [case_id],
            "get": _op(
                "The hand-off to the court (司法确认) as tracked on the case: the court, the "
                "agreement, when it took effect, the 30-day deadline, the checklist of "
                "materials (present or missing), the court's answers",
                200,
                400,
                401,
                403,
                404,
                503,
                schema=obj,
            ),
        },
        "/api/cases/{case_id}/court-bundle": {
            "parameters": [case_id],
            "post": _op(
                "Prepare the application for judicial confirmation of a case closed as 调解成功 "
                "(its mediator, its coordinators, the admin): a ZIP with the pre-filled "
                "application and checklist (PDF), the signed agreement, the recording's Chain "
                "and verification report, the case log and a signed manifest; `tiaojie verify "
                "court-bundle.zip` checks it. 409 for a case not closed as 调解成功",
                200,
                400,
                401,
                403,
                404,
                409,
                413,
                415,
                503,
                content="application/zip",
                body=APPLICATION,
            ),
        },
        "/api/cases/{case_id}/court-answer": {
            "parameters": [case_id],
            "post": _op(
                "Record the court's answer (accepted, confirmed, refused; its document number "
                "and date), in the case log",
                201,
                400,
                401,
                403,
                404,
                409,
                413,
                415,
                503,
                schema=obj,
                body=ANSWER,
            ),
        },
        "/api/cases/{case_id}/follow-ups": {
            "parameters": [case_id],
            "get": _op(
                "The case's follow-ups (回访) and when one is due",
                200,
                400,
                401,
                403,
                404,
                503,
                schema=obj,
            ),
            "post": _op(
                "Record a follow-up (回访) of a case closed with an outcome (the case's "
                "`follow_up` action): the day, 电话/上门/视频/其他, whether the agreement is "
                "performed (履行中/已履行/未履行/部分履行), notes",
                201,
                400,
                401,
                403,
                404,
                409,
                413,
                415,
                503,
                schema=obj,
                body=FOLLOW_UP,
            ),
        },
    }
