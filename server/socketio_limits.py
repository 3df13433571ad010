"""Limits of the socket.io transport: what one connection may make the server hold.

python-socketio keeps a binary packet, and every frame after it, until the number of
attachments its header announces (up to 10^10) has arrived; Tiaojie never uses binary
events. So:

- `LimitedPacket` (given to `socketio.AsyncServer(serializer=...)`) refuses binary
  frames, binary packets and packets announcing attachments (`OverLimit`), and packets
  that are malformed: unknown types, events that are not a JSON array, JSON that does not
  parse or nests deeper than `json_input.MAX_DEPTH` (`PacketError`);
- `guard_packets(sio)` wraps engine.io's message handler: a connection that sends a
  packet over the limits (`OverLimit`) is closed; a malformed packet is dropped and its
  sender told with a `request_error` (`bad_packet`). Either way one WARNING line, no
  traceback;
- `InProgress` counts the bytes of the events a connection has in progress (their
  handlers run as tasks of their own); signalling closes a connection over its limit.
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
    """A malformed socket.io packet from a client: dropped, the connection stays. When the
    packet could be read far enough to know it asked for an acknowledgement, `ack_id`
    names it, so the sender's call is answered with the refusal instead of timing out."""

    def __init__(self, message: str, ack_id: int | None = None, connect: bool = False) -> None:
        super().__init__(message)
        self.ack_id = ack_id
        #: A CONNECT packet: the connection attempt is refused as an invalid `auth` is.
        self.connect = connect


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
            ack_id = self.id if self.packet_type == packet.EVENT else None
            connect = self.packet_type == packet.CONNECT
            raise PacketError(f"JSON nested deeper than {MAX_DEPTH} levels", ack_id, connect)
        return attachments


MessageHandler = Callable[[str, Any], Awaitable[None]]


async def close_connection(sio: socketio.AsyncServer, eio_sid: str, why: str) -> None:
    """Close a connection now, transport and all, with one WARNING line."""
    log.warning("closed socket.io connection %s: %s", eio_sid, why)
    socket = sio.eio.sockets.get(eio_sid)
    if socket is not None:
        # Not eio.disconnect alone: it waits until the socket's writer has sent CLOSE,
        # for ever if the writer is gone, and then waits for the client to hang up, which
        # a hostile one would not. Closed without waiting, then a None in the socket's
        # queue ends its writer, which sends CLOSE and closes the websocket (or answers
        # the pending poll) now.
        await socket.close(wait=False)
        await socket.queue.put(None)
    await sio.eio.disconnect(eio_sid)  # forgets the closed socket


def guard_packets(sio: socketio.AsyncServer) -> None:
    """Wrap engine.io's message handler: close a connection over the limits, drop its
    malformed packets and tell the sender (module docstring).

    socket.io runs this for each message in turn, before the next one is read; the
    event handlers it starts run as tasks of their own (see `InProgress`).
    """
    eio = sio.eio
    handle: MessageHandler = eio.handlers["message"]  # socketio's packet dispatcher

    async def refuse(
        eio_sid: str, why: str, ack_id: int | None = None, connecting: bool = False
    ) -> None:
        log.warning("dropped a socket.io packet of %s: %s", eio_sid, why)
        sid = sio.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is None and connecting:  # refused as any invalid connect `auth` is
            error = TiaojieError("bad_request", f"The connection request is not valid: {why}.")
            data = {"message": error.code, "data": error.to_dict()}
            await eio.send(eio_sid, packet.Packet(packet.CONNECT_ERROR, data, "/").encode())
            return
        if sid is not None:  # connected: tell the sender
            error = TiaojieError("bad_packet", f"The server could not read a packet: {why}.")
            await sio.emit("request_error", {"event": "", **error.to_dict()}, to=sid)
            if ack_id is not None:  # and answer the call it made, as any refusal is
                answer = {"ok": False, **error.to_dict()}
                ack = packet.Packet(packet.ACK, data=[answer], namespace="/", id=ack_id)
                await eio.send(eio_sid, ack.encode())

    async def message(eio_sid: str, data: Any) -> None:
        if eio_sid not in eio.sockets:  # closed, and the transport not gone yet: drop
            return
        if not data:  # an empty Engine.IO message: not even a packet type
            await refuse(eio_sid, "empty packet")
            return
        try:
            await handle(eio_sid, data)
        except OverLimit as error:
            await close_connection(sio, eio_sid, str(error))
        except PacketError as error:
            await refuse(eio_sid, str(error), error.ack_id, error.connect)

    eio.on("message", message)


class InProgress:
    """Bytes of event payloads each connection has in progress (events whose handler
    has not finished), at most `limit` per connection."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[str, int] = {}

    def hold(self, sid: str, size: int) -> bool:
        """Count `size` more bytes for `sid`: False (nothing counted) if over the limit."""
        held = self._held.get(sid, 0) + size
        if held > self.limit:
            return False
        self._held[sid] = held
        return True

    def release(self, sid: str, size: int) -> None:
        left = self._held.get(sid, 0) - size
        if left > 0:
            self._held[sid] = left
        else:
            self._held.pop(sid, None)
