"""``leaklab report``: execute the notebooks headless and write one offline
HTML report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .common import TargetArgs, UsageError, add_target_args, at_least_one


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="execute the notebooks headless and write one offline HTML report")
    add_target_args(p)
    p.add_argument("--cycles", type=int, default=None, help="cycles for every notebook (default: each notebook's own)")
    p.add_argument("--out", default="report", help="output folder (default: report/)")
    p.add_argument("--jobs", type=int, default=2, help="notebooks executed at a time, each in its own kernel (default 2)")
    p.add_argument("--against", default=None, metavar="FOLDER|REVISION",
                   help="your code before the change (a folder or a git revision): the report opens with the "
                        "before/after table (see `leaklab compare`)")
    p.add_argument("--notebooks", default=None, metavar="DIR",
                   help="run your edited copies in DIR (see `leaklab notebooks`) instead of the kit's")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    at_least_one(args.cycles, "--cycles")
    at_least_one(args.jobs, "--jobs")
    if args.notebooks is not None:
        from ..resources import MissingNotebooksError, check_notebooks_dir

        try:
            check_notebooks_dir(args.notebooks)
        except MissingNotebooksError as exc:
            raise UsageError(str(exc)) from None
    ta = TargetArgs(args)  # a bad target fails here, before any kernel starts
    if args.against is not None and ta.name == "reference" and ta.target_file is None:
        raise UsageError("--against compares your code with another version of it: give --target olv --app-dir, "
                         "--target-file or an import path (the reference's fixes are notebook 04's variants)")
    try:
        return build(args, ta)
    except KeyboardInterrupt:  # the build has shut its kernels down
        print("interrupted", file=sys.stderr)
        return 130


def build(args: argparse.Namespace, ta: TargetArgs) -> int:
    """Execute the notebooks with a progress bar on stderr; the report's path on stdout."""
    from tqdm import tqdm

    from ..report.build import REFERENCE_ONLY, build_report
    from ..report.notebooks import NOTEBOOKS

    started = time.monotonic()
    tqdm.monitor_interval = 0  # no monitor thread left behind
    own = ta.name != "reference"
    total = sum(1 for n in NOTEBOOKS if not own or args.against is not None or n not in REFERENCE_ONLY)
    print(f"executing {total} notebooks (target {ta.target.name}); kernel logs in {args.out}/logs/",
          file=sys.stderr, flush=True)
    bar = tqdm(total=total, unit="notebook", file=sys.stderr)

    def progress(run) -> None:
        bar.write(f"  {run.name:<26} {run.elapsed_s:6.1f} s  " + ("ok" if run.ok else f"FAILED: {run.error}"), file=sys.stderr)
        bar.update(1)

    explicit_faults = args.faults if args.faults != "none" or own else None
    env = {"LEAKLAB_RUNS_DIR": str(Path(args.runs_dir).resolve())} if args.runs_dir else None
    try:
        result = build_report(args.out, target=ta.name or "reference", app_dir=ta.app_dir, target_file=ta.target_file,
                              faults=explicit_faults, options=ta.options or None, step_timeout_s=args.step_timeout,
                              cycles=args.cycles, concurrency=args.jobs, env=env, against=args.against,
                              notebooks_dir=Path(args.notebooks) if args.notebooks else None,
                              on_start=bar.set_description, on_progress=progress)
    finally:
        bar.close()
    for name, why in result.skipped.items():
        print(f"  {name:<26} skipped: {why}", file=sys.stderr)
    print(f"report built in {time.monotonic() - started:.1f} s: {result.path.resolve()}")
    return 1 if result.failed else 0
