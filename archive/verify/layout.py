"""Where things are in a Recording folder, as the verifier finds them: the files next to the
Chain (`chain.jsonl`), the `segments/` folder and how its files are named, and `locate`, which
turns the PATH given to `tiaojie verify` (a Recording folder, or one Segment MP4 inside its
`segments/`) into the folder and the one Segment to check. `VerifyError` means the verifier
cannot run at all (exit 2): no such path, not a Recording, no usable key.
"""

from __future__ import annotations

import re
from pathlib import Path

from tiaojie.archive.layout import CHAIN_FILE, SEGMENTS_DIR

_SEGMENT_NUMBER = re.compile(r"(\d+)-")


class VerifyError(Exception):
    """The verifier cannot run: no such path, not a Recording, no usable key (exit 2)."""


def locate(path: Path) -> tuple[Path, str | None]:
    """The Recording folder, and the one Segment to check when PATH is an MP4."""
    if not path.exists():
        raise VerifyError(f"no such file or folder: {path}")
    if path.is_dir():
        if not (path / CHAIN_FILE).is_file():
            raise VerifyError(f"{path} is not a recording: it has no {CHAIN_FILE}")
        return path, None
    folder = path.resolve().parent.parent
    if path.resolve().parent.name != SEGMENTS_DIR or not (folder / CHAIN_FILE).is_file():
        raise VerifyError(
            f"{path} is not in a recording's {SEGMENTS_DIR}/ folder next to a {CHAIN_FILE}"
        )
    return folder, f"{SEGMENTS_DIR}/{path.name}"


def segment_number(name: str) -> int | None:
    match = _SEGMENT_NUMBER.match(Path(name).name)
    return int(match.group(1)) if match else None
