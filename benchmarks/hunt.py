"""The hunt's reach and false alarms, timed.

    python benchmarks/hunt.py [--faults all] [--repeat-none 5] [--budget 300] [--olv]

* ``--faults all`` (the reference backend with every fault on): the whole
  generated hunt within its budget; prints each finding (minimal sequence,
  what grows, confirmed, checklist item) and, per fault, whether a finding
  maps to its item. C5 is a slow-down, not growth: a hunt does not look for
  it (the checklist's store probe does).
* ``--repeat-none N``: N hunts on the fixed reference backend; prints how many
  sequences were flagged in each (the goal: none).
* ``--olv``: the upstream-shaped app (tests/attach/olv_app) with its planted
  causes switched by ``OLV_APP_FAULTS`` (default C8).

Times are wall-clock on this machine, in one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from leaklab.cli import format_hunt
from leaklab.hunt import hunt

ROOT = Path(__file__).resolve().parents[1]
IDS = [f"C{i}" for i in range(1, 10)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", default="all")
    parser.add_argument("--repeat-none", type=int, default=0)
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--olv", action="store_true")
    args = parser.parse_args(argv)
    if args.olv:
        os.environ.setdefault("OLV_APP_FAULTS", "C8")
        started = time.monotonic()
        result = hunt("olv", app_dir=ROOT / "tests" / "attach" / "olv_app", budget_s=args.budget, runs_dir=False,
                      progress=False)
        print(f"== olv app, OLV_APP_FAULTS={os.environ['OLV_APP_FAULTS']}: {time.monotonic() - started:.0f} s")
        print(format_hunt(result))
        return 0
    if args.faults:
        started = time.monotonic()
        result = hunt("reference", faults=args.faults, budget_s=args.budget, runs_dir=False, progress=False)
        elapsed = time.monotonic() - started
        print(f"== reference, faults {args.faults}: {elapsed:.0f} s (budget {args.budget:.0f} s)")
        print(format_hunt(result))
        reached = {i: [f.sequence for f in result.findings if i in f.items] for i in IDS}
        like = {i: [f.sequence for f in result.findings if i in f.similar and i not in f.items] for i in IDS}
        for i in IDS:
            where = (f"found: {', '.join(reached[i])}" if reached[i]
                     else f"only signals alike: {', '.join(like[i])}" if like[i] else "not found")
            print(f"  {i}: {where}")
    for n in range(args.repeat_none):
        started = time.monotonic()
        result = hunt("reference", faults="none", budget_s=args.budget, runs_dir=False, progress=False)
        leaks = [f.sequence for f in result.findings if f.confirmed == "leak"]
        other = [f"{f.sequence} ({f.confirmed})" for f in result.findings if f.confirmed != "leak"]
        print(f"== reference, no fault, hunt {n + 1}: {len(result.tried)} sequences in {time.monotonic() - started:.0f} s;"
              f" confirmed leaks {len(leaks)}: {'; '.join(leaks) or '-'}; other findings: "
              f"{'; '.join(other) or '-'}; released as designed: "
              f"{'; '.join(f'{f.sequence} ({f.lifetime_s:.1f} s)' for f in result.released) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
