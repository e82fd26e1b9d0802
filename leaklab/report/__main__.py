"""``python -m leaklab.report strip [NOTEBOOK ...]``: strip outputs and
execution counts before committing (the tests fail on a notebook that has them)."""

from __future__ import annotations

import sys

from .notebooks import strip_files


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "strip":
        print("usage: python -m leaklab.report strip [NOTEBOOK.ipynb ...]", file=sys.stderr)
        return 2
    for path in strip_files(argv[1:] or None):
        print(f"stripped {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
