"""Screening and caucuses at the media level: the SFU forwards nothing a screen or a
caucus withholds (counted in what the subscribers receive), the mediator still gets
everyone, only the mediator changes them, and the recording chains who was where."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.testmedia import make_test_mp4
from tests.support.waiting import eventually
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import JoinRefused, RoomClient
from tiaojie.server.media.rules import ForwardingRules


@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory):
    return make_test_mp4(tmp_path_factory.mktemp("media") / "av.mp4", seconds=3)


async def join(live_server, room, role, name, **extra) -> RoomClient:
    invite = await live_server.create_invite(room["id"], role, name, **extra)
    client = RoomClient(invite["url"])
    client.invite = invite
    await client.join()
    return client


def pid(client: RoomClient) -> str:
    return client.invite["invite_id"]


async def withheld_while(watcher, sub, kind: str, witness, witness_sub, more: int = 30) -> None:
    """`watcher`'s subscription `sub` gets nothing while `witness` receives `more` packets
    of the same publication (counted from a few packets after the change, which may have
    been on the wire already)."""
    start = witness_sub.packets
    await eventually(lambda: witness_sub.packets >= start + 5, what="the witness receives")
    before = sub.packets
    await eventually(
        lambda: witness_sub.packets >= start + 5 + more, what=f"{more} packets to the witness"
    )
    assert sub.packets == before, f"{kind} was forwarded to a screened subscriber"


def test_forwarding_rules():
    rules = ForwardingRules({"a": "c1", "b": "c1"}, {("x", "y"): "video", ("y", "x"): "all"})
    assert rules.allows("a", "b", "video") and not rules.allows("a", "x", "audio")
    assert not rules.allows("x", "a", "audio")  # the main room does not receive a caucus
    assert rules.allows("x", "y", "audio") and not rules.allows("x", "y", "video")
    assert not rules.allows("y", "x", "audio") and not rules.allows("y", "x", "video")
    assert rules.allows("x", "z", "video")


async def test_screening_withholds_the_publication_and_mode_none_restores_it(live_server, test_mp4):
    room = await live_server.create_room(lobby=False)
    mediator = await join(live_server, room, "mediator", "M")
    victim = await join(live_server, room, "party", "V")
    other = await join(live_server, room, "party", "O")
    source = FileSource(test_mp4)
    try:
        await other.publish(source)
        o = pid(other)
        for c in (victim, mediator):
            await eventually(lambda c=c: len(c.subscriptions_of(o)) == 2, what="subscribed")
        seen, heard = victim.subscriptions_of(o)["camera"], victim.subscriptions_of(o)["microphone"]
        m_seen, m_heard = (mediator.subscriptions_of(o)[s] for s in ("camera", "microphone"))
        await eventually(lambda: seen.packets > 10 and heard.packets > 10, what="flowing")

        # only the mediator screens
        with pytest.raises(JoinRefused, match="forbidden"):
            await other.call("screen", {"participant_id": pid(victim), "from": o, "mode": "all"})
        with pytest.raises(JoinRefused, match="cannot_screen"):
            await mediator.call(
                "screen", {"participant_id": pid(mediator), "from": o, "mode": "all"}
            )

        answer = await mediator.call(
            "screen", {"participant_id": pid(victim), "from": o, "mode": "video"}
        )
        assert answer["screens"] == [{"participant_id": pid(victim), "from": o, "mode": "video"}]
        await withheld_while(victim, seen, "video", mediator, m_seen)
        audio = heard.packets
        await eventually(lambda: heard.packets > audio + 20, what="audio still forwarded")

        await mediator.call("screen", {"participant_id": pid(victim), "from": o, "mode": "all"})
        await withheld_while(victim, heard, "audio", mediator, m_heard)
        assert m_seen.packets > 0  # the mediator sees and hears both

        # durable with the room: the same link reconnecting is screened from its first packet
        stored = await live_server.state.store.require(room["id"])
        assert stored.screens == [{"participant_id": pid(victim), "from": o, "mode": "all"}]
        invite = victim.invite
        await victim.close()
        victim = RoomClient(invite["url"])
        victim.invite = invite
        await victim.join()
        assert victim.room_state["screens"] == []  # shown to the mediator only
        assert mediator.room_state["screens"] == []  # (as it was when the mediator entered)
        await eventually(lambda: len(victim.subscriptions_of(o)) == 2, what="subscribed again")
        late = victim.subscriptions_of(o)
        await withheld_while(victim, late["camera"], "video", mediator, m_seen)
        assert late["camera"].packets == 0 and late["microphone"].packets == 0

        await mediator.call("screen", {"participant_id": pid(victim), "from": o, "mode": "none"})
        await eventually(
            lambda: late["camera"].packets > 10 and late["microphone"].packets > 10,
            what="forwarded again after mode none",
        )
    finally:
        await source.stop()
        for c in (mediator, victim, other):
            await c.close()


async def test_caucus_members_receive_each_other_and_the_main_room_nothing_of_them(
    live_server, test_mp4
):
    room = await live_server.create_room(lobby=False)
    mediator = await join(live_server, room, "mediator", "M")
    applicant = await join(live_server, room, "party", "A", side="applicant")
    respondent = await join(live_server, room, "party", "R", side="respondent")
    requests: list[dict] = []
    mediator.sio.on("caucus_requested", lambda data: requests.append(data))
    overheard: list[dict] = []
    respondent.sio.on("caucus_requested", lambda data: overheard.append(data))
    sources = [FileSource(test_mp4), FileSource(test_mp4)]
    try:
        await applicant.publish(sources[0])
        await mediator.publish(sources[1])
        a, m, r = pid(applicant), pid(mediator), pid(respondent)
        await eventually(lambda: len(respondent.subscriptions_of(a)) == 2, what="r gets a")
        await eventually(lambda: len(respondent.subscriptions_of(m)) == 2, what="r gets m")
        await eventually(lambda: len(applicant.subscriptions_of(m)) == 2, what="a gets m")

        # a party asks; only the mediator hears it
        await applicant.call("caucus_request", {"with": "mediator"})
        await eventually(lambda: requests, what="the request reaches the mediator")
        assert requests[0]["participant_id"] == a and requests[0]["with"] == "mediator"
        assert not overheard
        with pytest.raises(JoinRefused, match="forbidden"):
            await applicant.call("caucus_open", {"members": [a]})
        with pytest.raises(JoinRefused, match="forbidden"):
            await mediator.call("caucus_request", {"with": "mediator"})

        opened = await mediator.call("caucus_open", {"members": [a, m], "title": "申请人单独沟通"})
        caucus_id = opened["caucus_id"]
        with pytest.raises(JoinRefused, match="forbidden"):
            await respondent.call("caucus_move", {"participant_id": r, "caucus_id": caucus_id})
        with pytest.raises(JoinRefused, match="forbidden"):
            await applicant.call("caucus_close", {"caucus_id": caucus_id})

        # the main room (the respondent) gets nothing of either caucus member ...
        in_caucus = applicant.subscriptions_of(m)["camera"]
        for who in (a, m):
            for source in ("camera", "microphone"):
                await withheld_while(
                    respondent,
                    respondent.subscriptions_of(who)[source],
                    source,
                    applicant,
                    in_caucus,
                )
        # ... while the members get each other
        heard = applicant.subscriptions_of(m)["microphone"].packets
        await eventually(
            lambda: applicant.subscriptions_of(m)["microphone"].packets > heard + 20,
            what="caucus members hear each other",
        )
        # everyone sees who is in private consultation
        await eventually(lambda: respondent.room_state is not None, what="room state")

        # the mediator moves back to the main room: the respondent gets the mediator again
        seen = respondent.subscriptions_of(m)["camera"]
        before = seen.packets
        await mediator.call("caucus_move", {"participant_id": m})
        await eventually(lambda: seen.packets > before + 10, what="the mediator is back")

        await mediator.call("caucus_close_all", {})
        after = respondent.subscriptions_of(a)["camera"].packets
        await eventually(
            lambda: respondent.subscriptions_of(a)["camera"].packets > after + 10,
            what="the applicant is back in the main room",
        )
        stored = await live_server.state.store.require(room["id"])
        assert stored.caucuses == {}
    finally:
        for s in sources:
            await s.stop()
        for c in (mediator, applicant, respondent):
            await c.close()


async def test_caucus_media_never_reaches_the_recorder_and_the_chain_says_who_was_where(
    live_server, test_mp4
):
    """... and a screening set and lifted while recording is chained, with who set it."""
    from tests.test_recording import events, start_recording, verify

    room = await live_server.create_room(lobby=False)
    mediator = await join(live_server, room, "mediator", "M")
    party = await join(live_server, room, "party", "P")
    other = await join(live_server, room, "party", "Q")
    source = FileSource(test_mp4)
    try:
        _, directory = await start_recording(live_server, room["id"])
        await party.publish(source)
        p = pid(party)
        plane = live_server.state.media

        def recorder_slots():
            media_room = plane.rooms.get(room["id"])
            return [
                slot
                for peer_id, peer in (media_room.peers.items() if media_room else [])
                if peer_id not in (p, pid(mediator))
                for slot in peer.slots
                if slot.publication is not None and slot.publication.participant_id == p
            ]

        await eventually(
            lambda: (
                len(recorder_slots()) == 2 and all(s.track.forwarded > 10 for s in recorder_slots())
            ),
            timeout=20,
            what="the recorder receives the party",
        )
        opened = await mediator.call("caucus_open", {"members": [p, pid(mediator)]})
        slots = recorder_slots()
        assert all(s.withheld for s in slots)
        counts = [s.track.forwarded for s in slots]
        received = slots[0].publication.received
        await eventually(
            lambda: slots[0].publication.received > received + 40, what="the party publishes on"
        )
        assert [s.track.forwarded for s in slots] == counts  # nothing reached the recorder
        await mediator.call("caucus_close", {"caucus_id": opened["caucus_id"]})
        await eventually(lambda: slots[0].track.forwarded > counts[0], what="recorded again")
        screen = {"participant_id": pid(other), "from": p}
        await mediator.call("screen", {**screen, "mode": "video"})
        await mediator.call("screen", {**screen, "mode": "all"})
        await mediator.call("screen", {**screen, "mode": "none"})
        await live_server.state.recordings.flush(room["id"])
        assert (await live_server.admin("DELETE", f"/api/rooms/{room['id']}/recording"))[0] < 300
    finally:
        await source.stop()
        await mediator.close()
        await party.close()
        await other.close()
    opened_events = events(directory, "caucus_opened")
    assert [e["caucus_id"] for e in opened_events] == [opened["caucus_id"]]
    joined = {e["participant_id"] for e in events(directory, "caucus_joined")}
    left = {e["participant_id"] for e in events(directory, "caucus_left")}
    assert joined == left == {p, pid(mediator)}
    closed = events(directory, "caucus_closed")
    assert len(closed) == 1 and closed[0]["duration_s"] >= 0
    screens = [
        (e["participant_id"], e["source_id"], e["before"], e["mode"], e["by"])
        for e in events(directory, "screen")
    ]
    assert screens == [
        (pid(other), p, "none", "video", pid(mediator)),
        (pid(other), p, "video", "all", pid(mediator)),
        (pid(other), p, "all", "none", pid(mediator)),
    ]
    result = await asyncio.to_thread(verify, directory, live_server.state.settings.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
