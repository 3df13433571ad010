"""`python -m server [COMMAND ...]` is `tiaojie`; with no command (only options), `serve`."""

import sys

from server.cli import build_parser, main

commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
arguments = sys.argv[1:]
if not arguments or arguments[0] not in commands | {"--version"}:
    arguments = ["serve", *arguments]
sys.exit(main(arguments))
