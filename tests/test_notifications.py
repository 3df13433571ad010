"""Notifications: the outbox in the database (claims on SQLite and PostgreSQL, idempotency,
retries with backoff until sent or failed), the channels against real local receivers
(an aiohttp SMS / WeChat gateway the test starts, a real SMTP server with aiosmtpd,
STARTTLS and TLS), and one whole path: registering a case, dispatching it and scheduling
its session queue messages that the server's own worker delivers to the local gateway,
visible on the case through GET /api/notifications; forty days on, the reminders and the
回访 go out and the moot deadline warning is cancelled; no personal data in the logs.

The worker's clock is the test's: hours of backoff pass without waiting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from tests.conftest import free_port, start_server
from tests.test_tls import self_signed
from tiaojie.server.db import Database
from tiaojie.server.db.migrate import migrate
from tiaojie.server.db.url import parse_database_url
from tiaojie.server.notifications import outbox, templates
from tiaojie.server.notifications.channels import DeliveryError, Outgoing
from tiaojie.server.notifications.channels.http import HttpTarget
from tiaojie.server.notifications.channels.log import LogChannel
from tiaojie.server.notifications.channels.sms import SmsChannel, SmsSettings
from tiaojie.server.notifications.channels.smtp import EmailChannel, EmailSettings
from tiaojie.server.notifications.channels.wechat import WechatChannel, WechatSettings
from tiaojie.server.notifications.config import NotifySettings, Policy
from tiaojie.server.notifications.outbox import Message
from tiaojie.server.notifications.service import NOTIFICATIONS
from tiaojie.server.notifications.worker import Worker

PHONE, NAME = "13912345678", "王淑芬"


class Gateway:
    """A provider's HTTP endpoint: answers with the next of `script` (a status and a
    JSON body, or "hang" for a request left unanswered), then with success."""

    def __init__(self, ok: dict[str, Any]) -> None:
        self.ok = ok
        self.script: list[tuple[int, dict[str, Any]] | str] = []
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.url = ""
        #: accepted messages not taken yet by `next_to`
        self.others: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        step = self.script.pop(0) if self.script else (200, self.ok)
        if step == "hang":
            await asyncio.Event().wait()  # the client's timeout ends it
        assert isinstance(step, tuple)
        if step[0] == 200 and step[1] == self.ok:
            await self.received.put(body)
        return web.json_response(step[1], status=step[0])


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gw = Gateway({"Code": "OK"})
    app = web.Application()
    app.router.add_post("/send", gw.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    gw.url = f"http://127.0.0.1:{port}/send"
    yield gw
    await runner.cleanup()


def sms(url: str, timeout: float = 5.0) -> SmsSettings:
    return SmsSettings(
        target=HttpTarget(url, timeout=timeout, success_field="Code", success_value="OK"),
        body_template={
            "PhoneNumbers": "{phone}",
            "SignName": "{sign_name}",
            "TemplateCode": "{template_id}",
            "TemplateParam": "{params}",
        },
        sign_name="某区人民调解委员会",
        template_ids={"case_received": "SMS_0001"},
    )


def message(key: str = "case_received:c1:party0", **extra: Any) -> Message:
    return Message(
        key=key,
        case_id="case-0001",
        kind="case_received",
        recipient={"role": "party", "position": 0},
        address=extra.get("address", PHONE),
        variables={"name": NAME, "case_number": "（2026）东人调字第1号", "dispute_type": "物业"},
        not_before=extra.get("not_before", 1000),
    )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def no_links(row: dict[str, Any]) -> dict[str, str]:
    return {"code": "abc", "progress_url": "https://tiaojie.example/c/abc?key=SECRETKEY"}


async def texts() -> dict[str, str]:
    return {name: kind.text for name, kind in templates.KINDS.items()}


async def rows(db: Database) -> dict[str, dict[str, Any]]:
    async with db.read() as conn:
        return {r["key"]: r for r in await outbox.of_case(conn, "case-0001")}


async def test_the_outbox_claims_once_retries_with_backoff_and_fails_at_last(
    database_url: str, tmp_path: Path, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(parse_database_url(database_url, tmp_path))
    other = Database(parse_database_url(database_url, tmp_path))  # a second node
    await migrate(db)
    try:
        # The same event twice is one message.
        async with db.write() as conn:
            assert await outbox.queue(conn, [message(), message()], 1000) == 1
        async with db.write() as conn:
            assert await outbox.queue(conn, [message()], 1000) == 0
            assert await outbox.queue(conn, [message("later", not_before=5000)], 1000) == 1
            assert await outbox.queue(conn, [message("no-address", address=None)], 1000) == 1
        found = await rows(db)
        assert found["no-address"]["status"] == "failed"
        assert found["no-address"]["last_error"] == outbox.NO_ADDRESS

        # Two nodes claiming at once share the due rows: each row is claimed once; a row
        # not due yet is left; a claim is a lease that runs out.
        async def claim(database: Database) -> list[str]:
            async with database.write() as conn:
                return [r["key"] for r in await outbox.claim(conn, 1000, 60, 10)]

        first, second = await asyncio.gather(claim(db), claim(other))
        assert sorted(first + second) == ["case_received:c1:party0"]
        assert await claim(db) == []  # leased
        async with db.write() as conn:
            again = await outbox.claim(conn, 1061, 60, 10)  # the lease ran out
        assert [r["attempts"] for r in again] == [2]
        async with db.write() as conn:  # the stale outcome of try 1 is ignored
            assert not await outbox.finish(conn, again[0]["id"], 1, "failed", 1061)
            assert await outbox.finish(conn, again[0]["id"], 2, "sent", 1061, channel="log")
            assert await outbox.queue(conn, [message("retry", not_before=1061)], 1061) == 1

        # The worker: a 500, a timeout and a provider's error code in a 200, each retried
        # after a doubling backoff, then sent.
        clock = Clock(1061)
        policy = Policy(max_attempts=5, backoff=30, backoff_max=3600, lease=60)
        settings = NotifySettings(phone_channel="sms", sms=sms(gateway.url, 1.0), policy=policy)
        worker = Worker(db, settings, no_links, texts, clock)
        gateway.script = [(500, {}), "hang", (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL"})]
        caplog.set_level(logging.DEBUG)
        reasons = []
        for wait in (30, 60, 120):
            assert await worker.run_once() == 1
            row = (await rows(db))["retry"]
            assert row["status"] == "queued" and row["not_before"] == int(clock.now) + wait
            reasons.append(row["last_error"])
            assert await worker.run_once() == 0  # not due before its backoff
            clock.now += wait
        assert reasons == [
            "HTTP 500",
            "timeout after 1 s",
            "provider error: Code=isv.BUSINESS_LIMIT_CONTROL",
        ]
        assert await worker.run_once() == 1
        row = (await rows(db))["retry"]
        assert (row["status"], row["attempts"], row["channel"]) == ("sent", 4, "sms")
        body = await gateway.received.get()
        assert body["PhoneNumbers"] == PHONE and body["TemplateCode"] == "SMS_0001"
        assert body["SignName"] == "某区人民调解委员会"
        assert json.loads(body["TemplateParam"])["name"] == NAME

        # A message that never goes through fails after max_attempts, with its reason.
        gateway.script = [(503, {})] * 5
        clock.now = 5000
        for _ in range(5):
            assert await worker.run_once() == 1
            clock.now += 3600
        later = (await rows(db))["later"]
        assert (later["status"], later["attempts"], later["last_error"]) == (
            "failed",
            5,
            "HTTP 503",
        )

        # No personal data in the logs of all that.
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "case-0001" in logged
        for secret in (PHONE, NAME, "SECRETKEY", "东人调字"):
            assert secret not in logged
    finally:
        await db.close()
        await other.close()


async def test_the_http_channels_shapes_and_refusals(gateway: Gateway) -> None:
    out = Outgoing("m1", "case_received", "case-1", PHONE, "text", variables={"name": NAME})
    # WeChat: errcode 0 is success; its data object built from the variables.
    gateway.ok = {"errcode": 0, "errmsg": "ok"}
    wechat = WechatChannel(
        WechatSettings(
            HttpTarget(gateway.url, success_field="errcode", success_value="0"),
            template_ids={"case_received": "TPL-1"},
        )
    )
    await wechat.send(out)
    assert await gateway.received.get() == {
        "touser": PHONE,
        "template_id": "TPL-1",
        "data": {"name": {"value": NAME}},
    }
    gateway.script = [(200, {"errcode": 43101, "errmsg": "user refuse to accept the msg"})]
    with pytest.raises(DeliveryError, match="errcode=43101"):
        await wechat.send(out)
    # A form-encoded gateway; a 403 is permanent (no retry helps).
    form = SmsSettings(
        HttpTarget(gateway.url, body="form", success_field="errcode", success_value="0"),
        {"mobile": "{phone}", "content": "【{sign_name}】{text}"},
        sign_name="调解",
    )
    await SmsChannel(form).send(out)
    assert await gateway.received.get() == {"mobile": PHONE, "content": "【调解】text"}
    gateway.script = [(403, {})]
    with pytest.raises(DeliveryError) as refused:
        await SmsChannel(form).send(out)
    assert refused.value.permanent
    await LogChannel().send(out)  # the development channel needs nothing


class Mailbox:
    def __init__(self) -> None:
        self.received: asyncio.Queue[Any] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.loop.call_soon_threadsafe(self.received.put_nowait, envelope)
        return "250 OK"


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, str(cert)


async def test_email_over_a_real_smtp_server_plain_starttls_and_tls(
    tls: tuple[ssl.SSLContext, str],
) -> None:
    context, ca_file = tls
    mailbox = Mailbox()
    out = Outgoing("m1", "case_received", "case-1", "wang@example.org", "您好：案件已登记。")
    for security, options in (
        ("none", {}),
        ("starttls", {"tls_context": context, "require_starttls": True}),
        ("tls", {"ssl_context": context}),
    ):
        port = free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
        await asyncio.to_thread(controller.start)
        try:
            channel = EmailChannel(
                EmailSettings("127.0.0.1", port, security, sender="tz@example.org", ca_file=ca_file)
            )
            await channel.send(out)
            envelope = await asyncio.wait_for(mailbox.received.get(), 30)
            assert envelope.rcpt_tos == ["wang@example.org"]
            assert "案件已登记".encode() in envelope.content or b"utf-8" in envelope.content
        finally:
            await asyncio.to_thread(controller.stop)
    # Nobody listening: a failure to retry, naming no address.
    dead = EmailChannel(EmailSettings("127.0.0.1", free_port(), "none", timeout=2))
    with pytest.raises(DeliveryError) as failed:
        await dead.send(out)
    assert not failed.value.permanent and "example.org" not in failed.value.reason


async def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.1)


CASE = {
    "source": "court",
    "dispute_type": "property_management",
    "region": "900001001",
    "description": "申请人与物业公司因电梯停运两个月发生纠纷。",
    "parties": [
        {"role": "applicant", "name": NAME, "phone": PHONE},
        {"role": "respondent", "name": "幸福里物业公司"},
    ],
}


async def test_a_case_queues_its_messages_and_the_server_delivers_them(
    tmp_path: Path,
    gateway: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TIAOJIE_SMS_URL", gateway.url)
    monkeypatch.setenv("TIAOJIE_SMS_SIGN_NAME", "调解")
    monkeypatch.setenv("TIAOJIE_SMS_BODY", json.dumps({"to": "{phone}", "text": "{text}"}))
    caplog.set_level(logging.INFO)
    srv = await start_server(tmp_path / "data")
    try:
        mediator = await mediator_of(srv)  # before the case: its organisation takes it
        # Templates: listed with their variables; an unknown variable is refused.
        status, listed = await srv.admin("GET", "/api/notification-templates")
        assert status == 200
        kinds = {t["kind"]: t for t in listed["templates"]}
        assert "join_url" in kinds["session_scheduled"]["variables"]
        bad = {"templates": {"case_received": "{name}：{password}"}}
        assert (await srv.admin("PUT", "/api/notification-templates", json=bad))[0] == 400
        text = "{name}您好，{case_number}已登记。进度：{progress_url}"
        good = {"templates": {"case_received": text}}
        status, changed = await srv.admin("PUT", "/api/notification-templates", json=good)
        assert status == 200
        assert {t["kind"]: t["text"] for t in changed["templates"]}["case_received"] == text

        # Registering queues "case received" (in the registration's transaction); the
        # worker delivers it with the party's own progress link.
        status, receipt = await srv.admin("POST", "/api/cases", json=CASE)
        assert status == 201, receipt
        cid = receipt["case_id"]
        body = await next_to(gateway, PHONE)
        assert body["text"].startswith(f"{NAME}您好，{receipt['case_number']}已登记。")
        assert f"{receipt['progress_url']}?key=" in body["text"]

        async def listed_sent() -> list[dict[str, Any]] | None:
            status, answer = await srv.admin("GET", f"/api/notifications?case_id={cid}")
            assert status == 200, answer
            items = answer["notifications"]
            return items if any(i["status"] == "sent" for i in items) else None

        items = await eventually(listed_sent)
        by_status = {(i["kind"], i["recipient"]["side"]): i for i in items}
        sent = by_status[("case_received", "applicant")]
        assert sent["status"] == "sent" and sent["channel"] == "sms"
        assert sent["recipient"]["address"] == "139****5678"
        failed = by_status[("case_received", "respondent")]  # no phone for the company
        assert failed["status"] == "failed" and failed["last_error"] == outbox.NO_ADDRESS
        assert (await srv.request("GET", f"/api/notifications?case_id={cid}"))[0] == 401
        assert (await srv.admin("GET", "/api/notifications?case_id=no-such-case-1"))[0] == 404

        # In mediation, a session: its message with the party's own join link now, the
        # two reminders queued for a day and an hour before.
        path = f"/api/cases/{cid}/transitions"
        for change in (
            {"action": "accept"},
            {"action": "dispatch", "mediator_id": mediator},
            {"action": "take"},
        ):
            status, answer = await srv.admin("POST", path, json=change)
            assert status == 200, answer
        at = int(time.time()) + 2 * 86400
        status, made = await srv.admin(
            "POST", f"/api/cases/{cid}/sessions", json={"scheduled_at": at}
        )
        assert status == 201, made
        body = await next_to(gateway, PHONE)
        link = {i["name"]: i["url"] for i in made["invites"]}[NAME]
        assert link in body["text"] and "请您以申请人身份参加" in body["text"]
        _, answer = await srv.admin("GET", f"/api/notifications?case_id={cid}")
        kinds_of = [(i["kind"], i["status"]) for i in answer["notifications"]]
        assert ("session_reminder_day", "queued") in kinds_of
        assert ("session_reminder_hour", "queued") in kinds_of
        reminders = [i for i in answer["notifications"] if i["kind"] == "session_reminder_hour"]
        assert {i["not_before"] for i in reminders} == {at - 3600}
        assert ("deadline_approaching", "queued") in kinds_of
        dispatched = await next_to(gateway, "13800001111")  # the mediator's login is a phone
        assert "已分派给您" in dispatched["text"]

        # Closed as 调解成功: 回访 is due in 30 days, the deadline warning is moot. Forty
        # days on (a worker on the same outbox with its clock there), the reminders and
        # the 回访 go out, the deadline warning is cancelled.
        status, answer = await srv.admin(
            "POST", path, json={"action": "close", "outcome": "success"}
        )
        assert status == 200, answer
        notifications = srv.app[NOTIFICATIONS]
        later = Worker(
            notifications.database,
            notifications.settings,
            notifications.resolve,
            notifications.texts,
            Clock(time.time() + 40 * 86400),
        )
        await later.run_until_idle()
        _, answer = await srv.admin("GET", f"/api/notifications?case_id={cid}")
        states = {(i["kind"], i["recipient"]["side"], i["status"]) for i in answer["notifications"]}
        assert ("session_reminder_day", "applicant", "sent") in states
        assert ("session_reminder_hour", "applicant", "sent") in states
        assert ("deadline_approaching", None, "cancelled") in states
        assert ("follow_up_due", None, "sent") in states
        # the court deadline (docs/COURT.md; 23 days on) and the 回访 (30 days on), both
        # due by then: the worker sends them in either order
        texts = [(await next_to(gateway, "13800001111"))["text"] for _ in range(2)]
        court = [t for t in texts if "申请司法确认的期限" in t]
        follow_up = [t for t in texts if "请对当事人进行回访" in t]
        assert len(court) == len(follow_up) == 1, texts

        # Nothing personal in the server's logs.
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "notification" in logged and cid in logged
        token = link.split("token=")[1]
        for secret in (PHONE, NAME, token, "?key=", "幸福里"):
            assert secret not in logged, secret
    finally:
        await srv.shutdown()


async def next_to(gateway: Gateway, phone: str) -> dict[str, Any]:
    """The next message the gateway accepted for `phone` (others kept for their turn)."""
    while True:
        for body in gateway.others:
            if body["to"] == phone:
                gateway.others.remove(body)
                return body
        gateway.others.append(await asyncio.wait_for(gateway.received.get(), 30))


async def mediator_of(srv: Any) -> str:
    """A mediator whose login is a phone number, in the first (intake) organisation."""
    status, org = await srv.admin("POST", "/api/organisations", json={"name": "东城区调委会"})
    assert status == 201, org
    organisation = org["id"]
    status, account = await srv.admin(
        "POST",
        "/api/accounts",
        json={
            "login": "13800001111",
            "name": "李调解",
            "organisation_id": organisation,
            "roles": ["mediator"],
            "password": "correct horse battery staple 42",
        },
    )
    assert status == 201, account
    return str(account["id"])
