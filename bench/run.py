"""``make bench``: the scale-and-speed benchmark of issue 5 (``--quick`` for a short run).

Run as a script (``python bench/run.py``), so the repository root is put on the
path for the ``bench`` package and the worker processes it starts.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.main import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
