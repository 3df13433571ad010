"""The dashboard's queries at scale: `.venv/bin/python bench/statistics.py --help`; the
benchmark is bench/dashboard.py (docs/PERFORMANCE.md, "Statistics at scale").

This file is named as issue 16 asks, and as the standard library's `statistics`: the
other scripts in bench/ run with this folder first on sys.path, so their `import
statistics` finds this file, which then hands them the standard library's module."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)

if __name__ == "statistics":  # imported by another script in bench/
    sys.path[:] = [p for p in sys.path if p not in ("", HERE)]
    del sys.modules["statistics"]
    import statistics as _standard

    sys.modules["statistics"] = _standard
elif __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if p != HERE]
    sys.path.insert(0, str(Path(HERE).parent))
    from bench.dashboard import main

    sys.exit(main())
