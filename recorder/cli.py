"""`tiaojie record`: the recorder process the server launches per recorded room.

The recorder link's token comes in the environment (TIAOJIE_RECORDER_TOKEN), never on
the command line, where `ps` would show it to every user of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

TOKEN_ENV = "TIAOJIE_RECORDER_TOKEN"
#: Why the previous recorder of this recording exited, set by the server for its gap entry.
PREVIOUS_EXIT_ENV = "TIAOJIE_RECORDER_PREVIOUS_EXIT"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, help="the server's base URL")
    parser.add_argument(
        "--dir",
        dest="directory",
        type=Path,
        required=True,
        help="the recording folder (created; continued if it has a chain)",
    )
    parser.add_argument("--recording-id", required=True)
    parser.add_argument("--room-id", default="")
    parser.add_argument(
        "--key", type=Path, required=True, help="the recorder's Ed25519 private key (PEM)"
    )
    parser.add_argument(
        "--tsa-url",
        default=os.environ.get("TIAOJIE_TSA_URL") or None,
        help="RFC 3161 time-stamping authority for the seal",
    )
    parser.add_argument("--checkpoint-seconds", type=float, default=5.0)
    parser.add_argument(
        "--follows",
        default=None,
        help="JSON: the recording this one continues (a lost or drained node's: "
        "recording_id, node, reason, and the chain entry seen last or its seal)",
    )
    parser.add_argument(
        "--rtc-ports", default=None, help="UDP port range of the media sockets (the server's)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from tiaojie.recorder.session import Recorder
    from tiaojie.rtc import aiortc_internals
    from tiaojie.rtc.ports import parse_port_range

    os.umask(0o077)  # segments, chain and seal: for the server's account alone
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s recorder: %(message)s"
    )
    logging.getLogger("aioice").setLevel(logging.WARNING)
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        print(f"tiaojie record: set {TOKEN_ENV} to the recorder link's token", file=sys.stderr)
        return 2
    try:
        key = load_pem_private_key(args.key.read_bytes(), password=None)
    except (OSError, ValueError) as error:
        print(f"tiaojie record: cannot read the key {args.key}: {error}", file=sys.stderr)
        return 2

    try:
        aiortc_internals.bind_ice_in(parse_port_range(args.rtc_ports))
    except ValueError as error:
        print(f"tiaojie record: {error}", file=sys.stderr)
        return 2

    try:
        follows = json.loads(args.follows) if args.follows else None
    except ValueError as error:
        print(f"tiaojie record: --follows is not JSON: {error}", file=sys.stderr)
        return 2
    if follows is not None and not isinstance(follows, dict):
        print("tiaojie record: --follows is not a JSON object", file=sys.stderr)
        return 2

    async def main() -> int:
        recorder = Recorder(
            f"{args.server.rstrip('/')}/join#token={token}",
            args.directory,
            args.recording_id,
            key,  # type: ignore[arg-type]
            room_id=args.room_id,
            tsa_url=args.tsa_url,
            checkpoint_seconds=args.checkpoint_seconds,
            previous_exit=os.environ.get(PREVIOUS_EXIT_ENV) or None,
            follows=follows,
        )
        return await recorder.run()

    return asyncio.run(main())
