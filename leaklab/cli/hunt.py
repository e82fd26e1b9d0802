"""``leaklab hunt``: search the protocol's lifecycles for the ones that leak,
minimise and map them (:func:`format_hunt`)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from .common import TargetArgs, UsageError, add_json_arg, add_target_args, check_scenario, log_level, print_result
from .common import add_client_args


def add_parser(sub: Any) -> None:
    p = sub.add_parser("hunt", help="search the protocol's lifecycles for the ones that leak, minimise and map them")
    add_target_args(p)
    add_client_args(p)
    p.add_argument("--budget", type=float, default=300.0, metavar="SECONDS",
                   help="seconds for the whole hunt (default 300)")
    p.add_argument("--cycles", type=int, default=3, help="cycles per candidate (at least 3)")
    p.add_argument("--sequences", action="append", default=[], metavar="STEPS",
                   help="a candidate step list to try instead of the generated ones (repeatable)")
    p.add_argument("--scenario", action="append", default=[], metavar="FILE|STEPS",
                   help="a scenario file (`leaklab record` writes one) or step list to try besides the candidates "
                        "(repeatable)")
    add_json_arg(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..hunt import hunt

    log_level(logging.CRITICAL)
    if not args.budget > 0:
        raise UsageError("--budget must be a positive number of seconds")
    for seq in [*args.sequences, *args.scenario]:
        check_scenario(seq)
    ta = TargetArgs(args)
    client = {k: v for k, v in ta.session_kwargs.items() if k in ("client", "browser")}
    try:
        result = hunt(ta.target, budget_s=args.budget, cycles=args.cycles, sequences=args.sequences or None,
                      scenarios=args.scenario, runs_dir=args.runs_dir, progress=not args.json,
                      step_timeout_s=args.step_timeout, **client)
    except KeyboardInterrupt:
        print("interrupted (what was found so far is saved in the runs folder)", file=sys.stderr)
        return 130
    return print_result(result, args.json, format_hunt)


def format_hunt(result: Any) -> str:
    """The hunt's findings as text: each minimal sequence, replayable as written."""
    lines = [f"hunt: target={result.target} ({len(result.tried)} sequences in {result.elapsed_s:.0f} s, "
             f"budget {result.budget_s:.0f} s)", *(f"  {n}" for n in result.notes)]
    if result.not_tried:
        lines.append(f"  not tried (budget): {len(result.not_tried)}: {'; '.join(result.not_tried[:4])}")
    broke = [t for t in result.tried if t.get("unresponsive") or t.get("failed_cycles")]
    for t in broke:
        lines.append(f"  {t['sequence']}: {t['failed_cycles']} failed cycles, not judged: "
                     f"{(t.get('errors') or ['?'])[0]}")
    if not result.findings:
        lines.append("no sequence leaked")
    for f in result.findings:
        life = f" ({f.lifetime_s:.1f} s)" if f.lifetime_s is not None else ""
        lines.append(f"{f.sequence}: {f.confirmed}{life}; checklist: {f.where()}")
        lines.append(f"    {f.describe()}")
        if f.found_as != f.sequence:
            lines.append(f"    found as {f.found_as}")
        for g in f.chains[:2]:
            chain = " → ".join(e.get("label", "?") for e in g.get("chain") or [])
            lines.append(f"    {g.get('count')} × {g.get('type')} [{g.get('root_kind')}]: {chain}")
        lines.append(f"    replay: leaklab run --scenario '{f.sequence}'   why: leaklab why --scenario '{f.sequence}'")
    if result.path:
        lines.append(f"saved: {result.path}")
    return "\n".join(lines)
