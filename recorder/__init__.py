"""The recorder process (`tiaojie record`): joins a room as `recorder`, remuxes every
participant's streams to fragmented MP4 without transcoding, and writes the Chain
(tiaojie.archive) over every init segment and Fragment, with Checkpoints and a Seal."""
