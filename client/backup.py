"""The camera's backup encoding of a publisher connection (docs/PROTOCOL.md `backup_codec`).

A file's camera is sent as it is (H264). When someone in the room cannot decode it, the
server asks for the camera a second time in a codec they decode (VP8); the client then
decodes the file's frames (client/media_file.py DecodedTrack) and aiortc's own encoder
encodes them, on a second sendonly transceiver limited to that codec, published with
`"backup": true`. When nobody needs it any more (codec null) the transceiver goes
`inactive` and decoding stops; it is reused if asked again (a stopped transceiver would
be a port-0 section in the next offer, which aiortc refuses). CameraBackup holds what
was asked and what is sent; RoomClient negotiates each change.
"""

from __future__ import annotations

import logging
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpTransceiver

from tiaojie.client.media_file import DecodedTrack, FileSource
from tiaojie.rtc.codecs import codec_preferences

log = logging.getLogger(__name__)

#: The sources a backup can be sent of: the file's camera (a screen track is the caller's).
SOURCES = ("camera",)


def encodable(codec: str) -> bool:
    """Whether aiortc can encode video in `codec` (a mime type)."""
    if codec.lower() == "video/rtx":
        return False
    return any(c.mimeType.lower() == codec.lower() for c in codec_preferences("video", codec))


class CameraBackup:
    """What the server asked for (`wanted`) and what this connection sends (`sending`)."""

    def __init__(self) -> None:
        #: The codec the server last asked for; None: no backup wanted.
        self.wanted: str | None = None
        #: The codec the backup transceiver sends in; None: it idles or there is none.
        self.sending: str | None = None
        self.transceiver: RTCRtpTransceiver | None = None
        self.codec: str | None = None  # the transceiver's (only) codec
        self.track: DecodedTrack | None = None

    def settled(self) -> bool:
        return self.wanted == self.sending

    def apply(self, publisher: RTCPeerConnection, source: FileSource) -> None:
        """Start or stop sending, as `wanted` says (the caller then negotiates)."""
        codec = self.wanted
        if codec is None:
            if self.transceiver is not None:
                self.transceiver.direction = "inactive"
            source.decode_into(None)
            self.sending = None
            return
        if self.transceiver is None or self.codec != codec:
            if self.transceiver is not None:  # another codec than the idle one's
                self.transceiver.direction = "inactive"
            self.track = DecodedTrack()
            self.transceiver = publisher.addTransceiver(self.track, direction="sendonly")
            self.transceiver.setCodecPreferences(codec_preferences("video", codec))
            self.codec = codec
        self.transceiver.direction = "sendonly"
        source.decode_into(self.track)
        self.sending = codec

    def published(self) -> list[dict[str, Any]]:
        """The `publish` tracks entry of the backup, if it is sent."""
        if self.sending is None or self.transceiver is None or self.transceiver.mid is None:
            return []
        return [{"mid": self.transceiver.mid, "source": "camera", "backup": True}]

    def forget(self, source: FileSource | None, asked: bool = True) -> None:
        """The publisher connection is gone: so is its backup, and with `asked` what the
        server asked of it (a reconnect: it asks again on the new one)."""
        if source is not None:
            source.decode_into(None)
        self.sending = self.transceiver = self.codec = self.track = None
        if asked:
            self.wanted = None
