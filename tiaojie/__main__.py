"""`python -m tiaojie [COMMAND ...]` is `tiaojie`; with no command (only options), `serve`.

The server starts its recorders this way (`sys.executable -m tiaojie record ...`), so they
run the same installed package without depending on the console script being on PATH.
"""

import sys

from tiaojie.cli import command_names, main

arguments = sys.argv[1:]
if not arguments or arguments[0] not in command_names() | {"--version"}:
    arguments = ["serve", *arguments]
sys.exit(main(arguments))
