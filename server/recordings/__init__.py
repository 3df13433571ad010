"""Recordings: the recorder processes the server runs, the room events in their chains,
and the archive of recordings with who may read it.

State (`Room.recording`) lives in the room document, so every node and every client sees
that a room is recorded, and who consented. The recordings themselves are folders under
`DATA/recordings/<recording_id>/` written by the recorder process (recorder/,
docs/ARCHIVE.md); `DATA/recordings/index.jsonl` says which room each belongs to.

Flow (docs/PROTOCOL.md, docs/ARCHIVE.md):
- a mediator (`start_recording`) or the admin (`POST /api/rooms/{id}/recording`) starts
  a recording: the server mints a recorder link and launches `tiaojie record`, which
  joins the room like anyone (everyone sees it) and writes the chain; a crashed recorder
  is restarted and continues the same chain;
- room events that belong in the evidence (joins, leaves, consent, moderation, the
  agreement) go into the chain through the recorder; an agreement signed after the
  recording stopped is appended by the server as an addendum, with a new seal;
- stopping (or the room ending) seals the chain.

Modules:
- `state`: the recording in the room document, and what clients see of it;
- `rules`: the pure rules that change a Room (start, stop, consent);
- `process`: the recorder process (command line, launch, stop);
- `notes`: the kinds of room event (`RoomEvent`) and their delivery to the recorder;
- `addendum`: the server's own addendum to a sealed chain;
- `archive`: `DATA/recordings/` (index.jsonl, summaries, the files that may be served);
- `download`: one recording as a ZIP (tiaojie.archive.bundle), streamed;
- `access`: archivist tokens and playback tickets;
- `archivists`: the register of issued archivist tokens (issue, revoke, list);
- `service`: `Recordings`, start/stop, supervision, notes, and the socket.io events;
- `http`: the REST routes (start/stop, the archive from the archive index,
  server/archive_index/).
"""

from tiaojie.server.recordings.access import ArchiveAuth
from tiaojie.server.recordings.archive import RecordingArchive
from tiaojie.server.recordings.archivists import ArchivistRegister
from tiaojie.server.recordings.http import RecordingRoutes
from tiaojie.server.recordings.notes import RoomEvent
from tiaojie.server.recordings.process import RECORDER_TOKEN_ENV, RecorderProcess
from tiaojie.server.recordings.service import START_CALL, Recordings
from tiaojie.server.recordings.state import public, view

__all__ = [
    "RECORDER_TOKEN_ENV",
    "START_CALL",
    "ArchiveAuth",
    "ArchivistRegister",
    "RecorderProcess",
    "RecordingArchive",
    "RecordingRoutes",
    "Recordings",
    "RoomEvent",
    "public",
    "view",
]
