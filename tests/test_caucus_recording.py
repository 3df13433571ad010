"""Recording a caucus only while every member consents, at the media level with a real
recorder: the recorder receives nothing of a caucus until the mediator asks and every
member has accepted; someone moved in who has not answered, a refusal, or the mediator
withdrawing stops it again; only the mediator asks, only members answer; the chain says
who asked, who answered what, and when the recorder began and stopped receiving it."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.testmedia import make_test_mp4
from tests.support.waiting import eventually
from tests.test_caucus import join, pid
from tests.test_recording import events, start_recording, verify
from tiaojie.client.media_file import FileSource
from tiaojie.client.session import JoinRefused


@pytest.fixture(scope="module")
def test_mp4(tmp_path_factory):
    return make_test_mp4(tmp_path_factory.mktemp("media") / "av.mp4", seconds=3)


async def test_a_caucus_is_recorded_only_while_every_member_consents(live_server, test_mp4):
    room = await live_server.create_room(lobby=False)
    mediator = await join(live_server, room, "mediator", "M")
    party = await join(live_server, room, "party", "P")
    other = await join(live_server, room, "party", "Q")
    source = FileSource(test_mp4)
    m, p, q = pid(mediator), pid(party), pid(other)
    try:
        caucus_id = (await mediator.call("caucus_open", {"members": [p, m]}))["caucus_id"]
        with pytest.raises(JoinRefused, match="not_recording"):
            await mediator.call("caucus_record", {"caucus_id": caucus_id, "record": True})

        _, directory = await start_recording(live_server, room["id"])
        await party.publish(source)
        plane = live_server.state.media

        def recorder_slots():
            media_room = plane.rooms.get(room["id"])
            return [
                slot
                for peer_id, peer in (media_room.peers.items() if media_room else [])
                if peer_id not in (p, m, q)
                for slot in peer.slots
                if slot.publication is not None and slot.publication.participant_id == p
            ]

        await eventually(lambda: len(recorder_slots()) == 2, timeout=20, what="recorder subscribed")
        slots = recorder_slots()
        publication = slots[0].publication

        async def not_recorded() -> None:
            assert all(s.withheld for s in slots)
            counts = [s.track.forwarded for s in slots]
            received = publication.received
            await eventually(lambda: publication.received > received + 30, what="P publishes on")
            assert [s.track.forwarded for s in slots] == counts, "the caucus reached the recorder"

        async def recorded() -> None:
            counts = [s.track.forwarded for s in slots]
            await eventually(
                lambda: all(s.track.forwarded > c + 5 for s, c in zip(slots, counts, strict=True)),
                what="the recorder receives the caucus",
            )

        await not_recorded()
        # only the mediator asks; only members answer, and only once asked
        with pytest.raises(JoinRefused, match="forbidden"):
            await party.call("caucus_record", {"caucus_id": caucus_id, "record": True})
        with pytest.raises(JoinRefused, match="not_asked"):
            await party.call("caucus_recording_consent", {"caucus_id": caucus_id, "accepted": True})

        asked = await mediator.call("caucus_record", {"caucus_id": caucus_id, "record": True})
        # the mediator who asks has consented; the party has not answered yet
        assert asked["caucus"]["recording"] == {
            "state": "asking",
            "waiting": [p],
            "consents": {m: True},
        }
        with pytest.raises(JoinRefused, match="not_member"):
            await other.call("caucus_recording_consent", {"caucus_id": caucus_id, "accepted": True})
        await not_recorded()
        answer = await party.call(
            "caucus_recording_consent", {"caucus_id": caucus_id, "accepted": True}
        )
        assert answer["caucus"]["recording"] == {"state": "on", "waiting": []}  # no one's answers
        await recorded()

        # someone moved in who has not answered: not recorded until they do; they refuse
        await mediator.call("caucus_move", {"participant_id": q, "caucus_id": caucus_id})
        await not_recorded()
        await other.call("caucus_recording_consent", {"caucus_id": caucus_id, "accepted": False})
        state = await mediator.call("caucus_move", {"participant_id": m, "caucus_id": caucus_id})
        shown = next(c for c in state["caucuses"] if c["id"] == caucus_id)["recording"]
        assert shown["state"] == "refused" and shown["consents"] == {m: True, p: True, q: False}
        await not_recorded()
        # they go back to the main room: every member consents again
        await mediator.call("caucus_move", {"participant_id": q})
        await recorded()
        # the mediator withdraws: nothing more reaches the recorder
        withdrawn = await mediator.call("caucus_record", {"caucus_id": caucus_id, "record": False})
        assert withdrawn["caucus"]["recording"] is None
        await not_recorded()

        await live_server.state.recordings.flush(room["id"])
        assert (await live_server.admin("DELETE", f"/api/rooms/{room['id']}/recording"))[0] < 300
    finally:
        await source.stop()
        for c in (mediator, party, other):
            await c.close()
    kinds = [
        e["kind"]
        for e in events(directory, "caucus_recording_asked")
        + events(directory, "caucus_recording_withdrawn")
    ]
    assert kinds == ["caucus_recording_asked", "caucus_recording_withdrawn"]
    answers = [
        (e["participant_id"], e["caucus_id"]) for e in events(directory, "caucus_recording_consent")
    ]
    assert answers == [(p, caucus_id)]
    assert [e["participant_id"] for e in events(directory, "caucus_recording_refusal")] == [q]
    started = events(directory, "caucus_recording_started")
    stopped = events(directory, "caucus_recording_stopped")
    assert len(started) == 2 and len(stopped) == 2
    assert sorted(started[0]["members"]) == sorted([p, m])
    assert sorted(stopped[0]["members"]) == sorted([p, m, q])  # Q came in unasked
    result = await asyncio.to_thread(verify, directory, live_server.state.settings.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
