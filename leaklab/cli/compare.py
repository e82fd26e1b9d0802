"""``leaklab compare``: your code against another version of it, the
before/after table (:func:`format_comparison`)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from ..metrics import Change
from .common import TargetArgs, UsageError, add_json_arg, add_target_args, at_least_one, log_level, print_result
from .common import add_client_args

#: Changes whose row gets its detail line (why it cannot tell, what moved).
DETAILED = (Change.CANT_TELL, Change.FIXED, Change.NEW_LEAK, Change.WORSE)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="your code against another version of it (a folder or a git revision): "
                                       "fixed / still leaks / new leak / unchanged")
    add_target_args(p)
    add_client_args(p)
    p.add_argument("--against", required=True, metavar="FOLDER|REVISION",
                   help="the version before your change: a second checkout's folder, a second target file or "
                        "import path, or a git revision of your app's repository (checked out into a temporary "
                        "worktree, removed afterwards)")
    p.add_argument("--items", default="all", help="checklist items run on both: C1,...,C9, all or none (default all)")
    p.add_argument("--scenario", action="append", default=[], metavar="STEPS",
                   help="a scenario, step list or scenario file run on both (repeatable)")
    p.add_argument("--hunt", default="latest", metavar="latest|PATH|none",
                   help="a saved hunt whose leaking sequences run on both (default: this target's latest, if any)")
    p.add_argument("--cycles", type=int, default=None, help="cycles per unit (default: an item's own; 5 a scenario)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, each in its own process (default 2: a "
                                                      "unit's two sides together)")
    p.add_argument("--timeline", type=float, default=None, metavar="SECONDS",
                   help="seconds of sampling after a scenario's last cycle (default: the target's release time)")
    p.add_argument("--no-trace-fix", dest="trace_fix", action="store_false",
                   help="don't trace which lines of your change ran in each unit (its hunks are still listed)")
    add_json_arg(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..checklist import UnknownItemError
    from ..compare import AgainstError, compare
    from ..driver.scenarios import UnknownScenarioError

    log_level(logging.ERROR)
    at_least_one(args.cycles, "--cycles")
    at_least_one(args.jobs, "--jobs")
    ta = TargetArgs(args)
    hunt = None if args.hunt in ("none", "") else args.hunt
    client = {k: v for k, v in ta.session_kwargs.items() if k in ("client", "browser")}
    try:
        result = compare(ta.name, against=args.against, app_dir=ta.app_dir, target_file=ta.target_file,
                         faults=ta.faults if ta.name != "reference" else None, options=ta.options or None,
                         watch=ta.watch or None, items=None if args.items == "none" else args.items,
                         scenarios=args.scenario, hunt=hunt, cycles=args.cycles, jobs=args.jobs,
                         progress=not args.json, step_timeout_s=args.step_timeout, timeline_s=args.timeline,
                         runs_dir=args.runs_dir, trace_fix=args.trace_fix, **client)
    except (AgainstError, UnknownItemError, UnknownScenarioError, FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return print_result(result, args.json, format_comparison)


def format_comparison(result: Any) -> str:
    """The before/after table as text (each unit's hunks under its first row:
    ``ran N×`` or ``never ran``), then the chains on each side."""
    from ..compare.fixlines import hunk_line

    counts = ", ".join(f"{n} {c}" for c, n in result.counts().items()) or "nothing ran"
    lines = [f"compare ({result.elapsed_s:.0f} s): {counts}", *(f"  {n}" for n in result.notes)]
    width = max((len(r.unit) for r in result.rows), default=4)
    coverage = getattr(result, "coverage", None) or {}
    shown: set[str] = set()
    for r in result.rows:
        lines.append(f"{r.unit:<{width}}  {r.metric:<34} {r.before:>22} -> {r.after:<22} {r.change}")
        if r.detail and (r.change in DETAILED or getattr(r, "answer", "")):
            lines.append(f"{'':<{width}}    {r.detail[:220]}")
        unit = coverage.get(r.unit)
        if unit and r.unit not in shown:
            shown.add(r.unit)
            for h in unit.get("hunks") or []:
                lines.append(f"{'':<{width}}    your change: {hunk_line(h, unit.get('cycles'))}")
    lines.extend(format_times(getattr(result, "times", None) or {}))
    for unit in [*result.outcomes, *result.runs]:
        chains = result.chains(unit)
        if any(chains.values()):
            lines.append(f"held by, {unit}:")
            for side, found in chains.items():
                for line in found[:2] or ["nothing"]:
                    lines.append(f"  {side}: {line[:200]}")
    if result.path:
        lines.append(f"saved: {result.path}")
    return "\n".join(lines)


def format_times(times: dict) -> list[str]:
    """Per unit (and run), the top functions' ms per cycle before -> after
    (first and last cycle, ms more each cycle) and their verdicts."""
    from .common import num

    def side(v: dict | None) -> str:
        if not v:
            return "not sampled"
        if v.get("last") is None:
            return "below its top functions"
        return f"{num(v.get('first'))} -> {num(v.get('last'))} ({num(v.get('per_cycle'))}/cycle)"

    lines = []
    for unit, per_run in times.items():
        for run, rows in per_run.items():
            lines.append(f"functions' time, {unit}" + (f" ({run} run)" if run else "") + " (ms/cycle, first -> last):")
            for r in rows:
                lines.append(f"  {r['function'][:60]}: before {side(r['before'])}; after {side(r['after'])}: "
                             f"{r['verdicts']}" + (f", {r['change']}" if r["change"] != Change.UNCHANGED else ""))
    return lines
