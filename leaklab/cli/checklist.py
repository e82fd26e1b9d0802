"""``leaklab checklist``: C1-C9 as experiments, a measured verdict for each
(:func:`format_checklist`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from .common import (TargetArgs, UsageError, add_client_args, add_json_arg, add_target_args, at_least_one,
                     check_scenario, log_level, num)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("checklist", help="C1-C9 as experiments: a measured verdict for each")
    add_target_args(p)
    add_client_args(p)
    p.add_argument("--items", default="all", help="C1,...,C9 or all")
    p.add_argument("--jobs", type=int, default=3, help="experiments at a time, each in its own process (default 3)")
    p.add_argument("--hunt", default=None, metavar="latest|PATH",
                   help="add rows for a saved hunt's findings no item covers: 'latest' (this target's newest in "
                        "the runs folder) or a hunt.json")
    p.add_argument("--scenario", action="append", default=[], metavar="FILE|STEPS",
                   help="also run this scenario (a file `leaklab record` wrote, or a step list) as the hunt does, "
                        "and add a row for what it leaks that no item covers (repeatable)")
    add_json_arg(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..checklist import UnknownItemError, get_items, run_checklist

    log_level(logging.ERROR)
    try:
        get_items(args.items)
    except UnknownItemError as exc:
        raise UsageError(str(exc)) from None
    for scenario in args.scenario:
        check_scenario(scenario)
    ta = TargetArgs(args)
    try:
        at_least_one(args.jobs, "--jobs")
        findings = None
        if args.hunt is not None:
            from ..hunt import load_findings

            try:
                findings = load_findings(args.hunt, target=ta.target.name if args.hunt == "latest" else None)
            except (FileNotFoundError, ValueError) as exc:
                raise UsageError(f"--hunt: {exc}") from None
        client = {k: v for k, v in ta.session_kwargs.items() if k in ("client", "browser")}
        result = run_checklist(ta.target, items=args.items, progress=not args.json, jobs=args.jobs,
                               step_timeout_s=args.step_timeout, **client)
        if args.scenario:  # the user's own scenarios, screened and confirmed as the hunt does
            from ..hunt import hunt

            found = hunt(ta.target, sequences=args.scenario, runs_dir=False, progress=False,
                         step_timeout_s=args.step_timeout)
            findings = [*(findings or []), *found.findings]
        if findings is not None:
            from ..hunt import checklist_rows

            result.extra_rows = checklist_rows(findings)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.as_dict(), default=str))
        return 0
    print(format_checklist(result, hunt=", ".join(filter(None, [args.hunt, *args.scenario])) or None))
    return 0


def format_checklist(result: Any, hunt: str | None = None) -> str:
    """One row per item (verdict, title) with its answer under it, the saved
    hunt's rows (``hunt``: what ``--hunt`` named), then the reply time split."""
    lines = [f"checklist: target={result.target} faults={','.join(result.faults) or 'none'} ({result.elapsed_s:.0f} s)"]
    for o in result.outcomes:
        lines.append(f"{o.id:<4} {o.verdict:<15} {o.title}")
        lines.append(f"     {o.evidence.get('answer', '')}")
    for r in result.extra_rows:
        lines.append(f"{r['id']:<4} {r['verdict']:<15} {r['title']}")
        lines.append(f"     {r['evidence'].get('answer', '')}")
    if hunt is not None and not result.extra_rows:
        lines.append(f"hunt ({hunt}): every finding is on the checklist, or there were none")
    lat = result.latency_split
    if lat:
        llm, backend = lat.get("llm") or {}, lat.get("backend") or {}
        lines.append(f"reply time (ms, first -> last cycle): whole {num(lat.get('first'))} -> {num(lat.get('last'))} "
                     f"({lat.get('verdict')}); LLM call {num(llm.get('first'))} -> {num(llm.get('last'))} "
                     f"({llm.get('verdict')}); backend {num(backend.get('first'))} -> {num(backend.get('last'))} "
                     f"({backend.get('verdict')})")
    return "\n".join(lines)
