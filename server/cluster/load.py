"""What this node carries, read from its media plane and connections (as /metrics does)."""

from __future__ import annotations

from tiaojie.server.media.sfu import MediaPlane
from tiaojie.server.signalling import Signalling


class NodeLoad:
    """This node's forwarded streams and participants, and the rooms in use here."""

    def __init__(self, media: MediaPlane, signalling: Signalling) -> None:
        self.media = media
        self.signalling = signalling

    def streams_and_participants(self) -> tuple[int, int]:
        peers = [peer for room in self.media.rooms.values() for peer in room.peers.values()]
        streams = sum(
            slot.publication is not None and not slot.withheld
            for peer in peers
            for slot in peer.slots
        )
        return streams, len(peers)

    def rooms_in_use(self) -> set[str]:
        """Rooms with a connection or media on this node: their leases are renewed."""
        return self.signalling.rooms_here() | set(self.media.rooms)
