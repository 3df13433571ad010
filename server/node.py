"""This node's name among the nodes that share one database.

Connections and recorder processes belong to the process that holds them; when a node
starts again it must recognise what it held before, and leave the rest alone. The name is
a random id kept in the data directory (it survives restarts and a changed hostname, as
in a container) and the port (two processes on one data directory stay apart).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

NODE_FILE = "node_id"


def node_id(data_dir: Path, port: int) -> str:
    path = data_dir / NODE_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        ident = path.read_text().strip()
    else:
        ident = secrets.token_hex(6)
        with os.fdopen(fd, "w") as f:
            f.write(ident + "\n")
    return f"{ident}:{port}"
