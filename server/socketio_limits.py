"""Limits of the socket.io transport: what one connection may make the server hold.

python-socketio keeps a binary packet, and every frame after it, until the number of
attachments its header announces (up to 10^10) has arrived; Tiaojie never uses binary
events. So:

- `LimitedPacket` (given to `socketio.AsyncServer(serializer=...)`) refuses binary
  frames, binary packets and packets announcing attachments (`OverLimit`), and packets
  that are malformed: unknown types, events that are not a JSON array, JSON that does not
  parse or nests deeper than `json_input.MAX_DEPTH` (`PacketError`);
- `limit_connections(sio, max_in_flight)` wraps engine.io's message handler: a
  connection over a limit (`OverLimit`, or more than `max_in_flight` bytes of packets in
  progress) is closed; a malformed packet is dropped and its sender told with a
  `request_error` (`bad_packet`). Either way one WARNING line, no traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from socketio import packet

from tiaojie.server.errors import TiaojieError
from tiaojie.server.json_input import MAX_DEPTH, deeper_than

log = logging.getLogger(__name__)

#: Attachments a packet may announce: none, as no Tiaojie event is binary.
MAX_ATTACHMENTS = 0
#: Packet types a client may send (binary events and acks, and CONNECT_ERROR, are not).
CLIENT_PACKETS = frozenset({packet.CONNECT, packet.DISCONNECT, packet.EVENT, packet.ACK})
BINARY_PACKETS = frozenset({packet.BINARY_EVENT, packet.BINARY_ACK})


class PacketError(ValueError):
    """A malformed socket.io packet from a client: dropped, the connection stays."""


class OverLimit(PacketError):
    """A packet over the transport's limits (binary): the connection is closed."""


class LimitedPacket(packet.Packet):
    """A socket.io packet without binary attachments (module docstring)."""

    uses_binary_events = False

    def decode(self, encoded_packet: Any) -> int:
        if not isinstance(encoded_packet, str):
            raise OverLimit("binary frames are not accepted")
        try:
            attachments = int(super().decode(encoded_packet) or 0)
        except RecursionError:
            raise PacketError("JSON nested too deeply") from None
        except Exception as error:  # the decoder's errors are the sender's (bad input)
            raise PacketError(f"malformed packet: {type(error).__name__}") from None
        if attachments > MAX_ATTACHMENTS or self.packet_type in BINARY_PACKETS:
            raise OverLimit("binary packets are not accepted")
        if self.packet_type not in CLIENT_PACKETS:
            raise PacketError(f"packet type {self.packet_type!r} is not accepted")
        if self.packet_type in (packet.EVENT, packet.ACK) and not (
            isinstance(self.data, list) and (self.data or self.packet_type == packet.ACK)
        ):
            raise PacketError("an event or ack carries a JSON array")
        if self.packet_type == packet.ACK and self.id is None:
            raise PacketError("an ack needs an id")
        # +1: an event's data is [name, payload]
        if deeper_than(self.data, MAX_DEPTH + 1):
            raise PacketError(f"JSON nested deeper than {MAX_DEPTH} levels")
        return attachments


MessageHandler = Callable[[str, Any], Awaitable[None]]


def limit_connections(sio: socketio.AsyncServer, max_in_flight: int) -> None:
    """Close a connection over the limits, drop its malformed packets (module docstring)."""
    eio = sio.eio
    handle: MessageHandler = eio.handlers["message"]  # socketio's packet dispatcher
    in_flight: dict[str, int] = {}

    async def close(eio_sid: str, why: str) -> None:
        log.warning("closed socket.io connection %s: %s", eio_sid, why)
        await eio.disconnect(eio_sid)

    async def refuse(eio_sid: str, why: str) -> None:
        log.warning("dropped a socket.io packet of %s: %s", eio_sid, why)
        sid = sio.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is not None:  # connected: tell the sender
            error = TiaojieError("bad_packet", f"The server could not read a packet: {why}.")
            await sio.emit("request_error", {"event": "", **error.to_dict()}, to=sid)

    async def message(eio_sid: str, data: Any) -> None:
        if not data:  # an empty Engine.IO message: not even a packet type
            await refuse(eio_sid, "empty packet")
            return
        size = len(data) if isinstance(data, str | bytes) else 0
        held = in_flight.get(eio_sid, 0) + size
        if held > max_in_flight:
            await close(eio_sid, f"more than {max_in_flight} bytes of packets in progress")
            return
        in_flight[eio_sid] = held
        try:
            await handle(eio_sid, data)
        except OverLimit as error:
            await close(eio_sid, str(error))
        except PacketError as error:
            await refuse(eio_sid, str(error))
        finally:
            left = in_flight.get(eio_sid, size) - size
            if left > 0:
                in_flight[eio_sid] = left
            else:
                in_flight.pop(eio_sid, None)

    eio.on("message", message)
