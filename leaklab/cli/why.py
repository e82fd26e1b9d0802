"""``leaklab why``: run a scenario, then show who keeps the survivors alive."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from .common import add_client_args, TargetArgs, add_json_arg, add_target_args, at_least_one, check_scenario, log_level


def add_parser(sub: Any) -> None:
    p = sub.add_parser("why", help="run a scenario, then show who keeps the survivors alive")
    add_target_args(p)
    add_client_args(p)
    p.add_argument("--scenario", default="switch-then-close",
                   help="a scenario name, a step list or a scenario file, as for run")
    p.add_argument("--cycles", type=int, default=5)
    p.add_argument("--slow", nargs="?", const="", default=None, metavar="FUNCTION",
                   help="explain the function that slows most (or FUNCTION, module.function) instead of the survivors: "
                        "its ms per cycle, the step and callers that run it, what it scales with")
    add_json_arg(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..serving import ServerStartError
    from ..session import RunInterrupted, run_async

    log_level(logging.ERROR)
    at_least_one(args.cycles, "--cycles")
    check_scenario(args.scenario)
    ta = TargetArgs(args)
    reports = []

    async def explain(session) -> None:
        reports.append(session.explain())

    kwargs = dict(ta.session_kwargs)
    kwargs["runs_dir"] = kwargs["runs_dir"] or False
    try:
        result = asyncio.run(run_async(ta.target, args.scenario, args.cycles, progress=not args.json, timeline_s=0.5,
                                       after_cycles=explain, **kwargs))
    except ServerStartError as exc:
        print(f"leaklab: backend did not start: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, RunInterrupted):
        print("interrupted", file=sys.stderr)
        return 130
    if args.slow is not None:
        return _slow(args, result)
    report = reports[0] if reports else None
    out = report.as_dict() if report is not None else {"groups": [], "elapsed_s": 0.0}
    out.update(run_id=result.run_id, target=result.target, scenario=result.scenario, faults=result.faults,
               cycles=result.cycles_done, errors=result.errors, target_notes=result.target_notes)
    if args.json:
        print(json.dumps(out, default=str))
    else:
        print(format_why(result, report))
    return 0


def _slow(args: argparse.Namespace, result: Any) -> int:
    from ..analysis.time import explain_slow

    summary = result.summary()
    why = explain_slow(result.records, summary.get("time") or {}, args.slow or None)
    if args.json:
        print(json.dumps({"run_id": result.run_id, "target": result.target, "scenario": result.scenario,
                          "slow": why, "errors": result.errors}, default=str))
    else:
        print(format_slow(result, why))
    return 0


def format_slow(result: Any, why: dict[str, Any] | None) -> str:
    """The slowest function of a run, explained: its time per cycle, the
    step and callers that run it, what it scales with."""
    lines = [f"why --slow: target={result.target} scenario={result.scenario} cycles={result.cycles_done}"]
    if why is None:
        lines.append("nothing slows: no function's time per cycle grew, and no stall held the loop")
        return "\n".join(lines)
    where = f" ({why['file'].rsplit('/', 1)[-1]}:{why['line']})" if why.get("file") else ""
    series = ", ".join(f"{x:.0f}" for x in why.get("series") or [])
    lines.append(f"{why['function']}{where}: {why['verdict']}"
                 + (f", {why['per_cycle']:+.1f} ms/cycle" if why.get("per_cycle") is not None else ""))
    if why.get("reason"):
        lines.append(f"  {why['reason']}")
    if series:
        lines.append(f"  ms on the event loop per cycle: {series}")
    if why.get("slowing_callers"):
        lines.append(f"  its callers slow with it (not causes of their own): {', '.join(why['slowing_callers'])}")
    run = why.get("per_run")
    if run:
        store = run.get("store")
        lines.append(f"  holds the loop {run['ms']:.0f} ms a time in {run['cycles']} of {run['of']} cycles"
                     + (f"; with {store['size']} {store['metric']} stored: {store['ms_each']:.2g} ms each"
                        if store else ""))
    if why.get("coroutine"):
        lines.append(f"  run by the step: {why['coroutine']} ({why['stalls']} stall(s) over the threshold)")
    for caller in why.get("callers") or []:
        lines.append(f"    {caller}")
    scales = why.get("scales_with")
    if scales:
        values = ", ".join(f"{x:g}" for x in scales["series"])
        lines.append(f"  scales with {scales['metric']} (rank correlation {scales['r']}): {values}")
    else:
        lines.append("  scales with: nothing the census counts grew in step with it")
    if result.errors:
        lines.append("errors: " + "; ".join(result.errors[:3]))
    return "\n".join(lines)


def format_why(result: Any, report: Any) -> str:
    """The run's header line, the retention chains of what survived, the
    first errors."""
    lines = [f"why: target={result.target} scenario={result.scenario} cycles={result.cycles_done}",
             str(report) if report is not None and report.groups
             else "no survivors: nothing created by the cycles is alive"]
    if result.errors:
        lines.append("errors: " + "; ".join(result.errors[:3]))
    return "\n".join(lines)
