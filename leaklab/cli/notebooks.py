"""``leaklab notebooks``: copy the notebooks (stripped) into a folder of
yours, to open in JupyterLab and run into the report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import UsageError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("notebooks", help="copy the notebooks (stripped) into a folder of yours, to open in JupyterLab")
    p.add_argument("dir", nargs="?", default="leaklab-notebooks", metavar="DIR",
                   help="the folder (default: ./leaklab-notebooks)")
    p.add_argument("--force", action="store_true", help="overwrite notebooks there that differ from the kit's")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..resources import NotebooksExistError, copy_notebooks

    try:
        written = copy_notebooks(args.dir, force=args.force)
    except NotebooksExistError as exc:
        raise UsageError(str(exc)) from None
    where = Path(args.dir).expanduser().resolve()
    for path in written:
        print(f"  {path.name}")
    print(f"{len(written)} notebook(s) written to {where}" if written else f"the notebooks in {where} are up to date")
    print(f"open them: jupyter lab {where}\nrun them into the report: leaklab report --notebooks {where}")
    return 0
