"""The archive index: the recordings and agreements of the archive, indexed in the
database, so the archive is listed and searched without walking folders. The files under
the data directory stay the evidence; the index says what is there and can always be
rebuilt from them (docs/ARCHIVE.md, "The archive index").

Modules (imported by name: server/db/schema.py imports `schema` while it loads, so this
package imports nothing itself):
- `schema`: the tables (`recordings`, `agreements`, `agreement_signatures`,
  `agreement_events`) on the shared metadata; migration v0003;
- `rows`: the rows made from a room document (pure), and the search text;
- `files`: the rows made from a Recording or Agreement folder (blocking reads);
- `index`: `ArchiveIndex`, the room store's projection, the seal and log writers, the
  queries the archive API makes;
- `rebuild`: the index made again from the files (`tiaojie reindex`, restore, start).
"""
