"""``leaklab run``: drive session cycles against a backend, measure each one,
print the verdict table (:func:`format_summary`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from ..metrics import Verdict
from .common import add_client_args, TargetArgs, add_json_arg, add_target_args, at_least_one, check_scenario, log_level, num


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="drive session cycles against a backend and measure each one")
    add_target_args(p)
    add_client_args(p)
    p.add_argument("--scenario", default="chat", help="open-close, chat, switch, switch-then-close, abrupt-chat, "
                   "reconnect-storm, proxy-chat, a step list: 'connect,switch,text-until-synth,close' "
                   "(what `leaklab hunt` prints), or a scenario file (.json/.yaml: what `leaklab record` writes)")
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--settle", type=float, default=0.3, help="seconds to wait after each cycle before the census")
    p.add_argument("--timeline", type=float, default=None, help="seconds of sampling after the last cycle")
    p.add_argument("--tracemalloc", action="store_true", help="trace Python allocations")
    p.add_argument("--no-collect", action="store_true",
                   help="leave garbage collection as the backend has it (no full collection before each census: "
                        "RSS shows what the cycles cost as they run; cyclic garbage is not measured)")
    add_json_arg(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from ..serving import ServerStartError
    from ..session import BackendUnresponsive, RunInterrupted, run

    log_level(logging.WARNING)
    at_least_one(args.cycles, "--cycles")
    check_scenario(args.scenario)
    ta = TargetArgs(args)
    try:
        result = run(
            ta.target, args.scenario, args.cycles, settle_s=args.settle, timeline_s=args.timeline,
            trace_memory=args.tracemalloc, progress=not args.json, collect=not args.no_collect, **ta.session_kwargs,
        )
    except ServerStartError as exc:
        print(f"leaklab: backend did not start: {exc}", file=sys.stderr)
        return 1
    except BackendUnresponsive as exc:
        print(f"leaklab: {exc}", file=sys.stderr)
        return 1
    except RunInterrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return 130
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(format_summary(summary))
    return 0


def format_summary(summary: dict) -> str:
    """A readable verdict table of one run."""
    lines = [
        f"run {summary['run_id']}: target={summary['target']} scenario={summary['scenario']} "
        # planted faults are the reference backend's switches: on your backend there are none to name
        + (f"faults={','.join(summary['faults']) or 'none'} " if summary['faults'] or summary['target'] == "reference" else "")
        + f"cycles={summary['cycles']} ({summary['elapsed_s']} s)",
        *(f"  setup: {note}" for note in summary.get("target_notes") or []),
        f"judged {summary.get('judged_cycles', summary['cycles'])} of {summary['cycles']} cycles"
        + (f" (failed: {', '.join(map(str, summary['failed_cycles']))})" if summary.get("failed_cycles") else "")
        + (f"; step timeout {summary['step_timeout_s']:.0f} s" if summary.get("step_timeout_s") else ""),
        f"{'metric':<58} {'start':>9} {'end':>9} {'/cycle':>8}  verdict",
    ]

    def row(name: str, v: dict) -> None:
        life = f" (lifetime {v['lifetime_s']:.1f} s)" if v.get("lifetime_s") is not None else ""
        lines.append(f"{name:<58} {num(v.get('start')):>9} {num(v.get('end')):>9} {num(v.get('per_cycle')):>8}  {v.get('verdict')}{life}")

    for name, v in summary.get("types", {}).items():
        row(f"type {name}", v)
    row("asyncio tasks", summary["tasks"])
    for name, v in summary["tasks"].get("by_coroutine", {}).items():
        if v.get("verdict") != Verdict.NONE:
            row(f"  task {name}", v)
    for name, v in summary.get("resources", {}).items():
        row(name, v)
    flat = 0
    for c in summary.get("containers", []):
        if c.get("verdict") in (Verdict.NONE, None):
            flat += 1
        else:
            row(f"container {c['path']}", c)
    if flat:
        lines.append(f"{flat} more containers reachable from the roots measured flat")
    lat = summary.get("latency_ms") or {}
    if lat.get("first") is not None:
        lines.append(f"reply latency (ms): first {num(lat['first'])}, last {num(lat['last'])}, "
                     f"{num(lat['per_cycle'])}/cycle: {lat['verdict']}"
                     + (f" ({lat['reason']})" if lat.get("reason") else ""))
    conn = lat.get("connect") or {}
    if conn.get("first") is not None:
        lines.append(f"connect latency (ms): first {num(conn['first'])}, last {num(conn['last'])}, "
                     f"{num(conn['per_cycle'])}/cycle: {conn['verdict']}"
                     + (f" ({conn['reason']})" if conn.get("reason") else ""))
    lines.extend(format_time(summary.get("time") or {}))
    for name, v in summary.get("lifecycle", {}).items():
        lines.append(format_lifecycle(name, v))
    memory = summary.get("memory") or {}
    for part, label in (("cyclic", "cyclic garbage"), ("rss", "memory not in objects")):
        v = memory.get(part) or {}
        if v.get("verdict") not in (None, Verdict.NONE):
            lines.append(f"{label}: {v['verdict']}: {v.get('note', '')}")
    lines.extend(format_survivors(summary))
    orphans = summary.get("orphans") or {}
    lines.append("after shutdown: " + ", ".join(f"{k} {v}" for k, v in orphans.items()))
    for line in summary.get("reaped") or []:
        lines.append(f"  ended, left running by the backend: {line}")
    if summary.get("errors"):
        lines.append("errors: " + "; ".join(summary["errors"][:5]))
    lines.append(f"saved: {summary.get('path')}")
    return "\n".join(lines)


def format_time(time: dict, top: int = 3) -> list[str]:
    """Where the event loop's time went: the loop held per cycle, the longest
    stalls with the code that held it, and the functions that slow."""
    loop = time.get("loop") or {}
    if not loop:
        return []
    out = []
    blocked = loop.get("loop_blocked_ms") or {}
    if blocked.get("first") is not None:
        out.append(f"event loop blocked (ms/cycle, stalls over the threshold): first {num(blocked['first'])}, "
                   f"last {num(blocked['last'])}, {num(blocked['per_cycle'])}/cycle: {blocked['verdict']}")
    for s in (time.get("stalls") or [])[:top]:
        where = f"{os.path.basename(s.get('file') or '')}:{s.get('line')}" if s.get("file") else "?"
        out.append(f"  stall {num(s.get('lag_ms'))} ms in cycle {s.get('cycle')}: {s.get('function') or '?'} ({where})"
                   + (f", in {s['coroutine']}" if s.get("coroutine") else ""))
    out.extend(format_split(time.get("split") or {}))
    for b in (time.get("blocking") or [])[:top]:
        where = f"{os.path.basename(b['file'])}:{b.get('line')}" if b.get("file") else "?"
        store = b.get("store")
        own = f" ({num(b['function_ms'])} ms in it)" if b.get("function_ms") is not None else ""
        out.append(f"blocks the loop each cycle: {b['function']} ({where}): {num(b['ms'])} ms a time{own}, in "
                   f"{b['cycles']} of {b['of']} cycles" + (f", run by {b['coroutine']}" if b.get("coroutine") else "")
                   + (f"; scales with {store['metric']}: {store['size']} stored, {store['ms_each']:.2g} ms each"
                      if store else ""))
    functions = time.get("functions") or {}
    callers = time.get("callers") or {}
    for key in (time.get("slows") or [])[:top]:
        f = functions.get(key) or {}
        where = f" ({os.path.basename(f['file'])}:{f.get('line')})" if f.get("file") else ""
        mine = [k for k, c in callers.items() if c == key]
        out.append(f"slows: {key}{where}: {num(f.get('first'))} -> {num(f.get('last'))} ms/cycle, "
                   f"{num(f.get('per_cycle'))} ms/cycle more each cycle"
                   + (f" (slowing its callers {', '.join(mine[:3])})" if mine else ""))
    unsure = time.get("inconclusive") or []
    if unsure:
        control = time.get("control") or {}
        out.append(f"inconclusive: {len(unsure)} timings grew ({', '.join(unsure[:3])}), "
                   f"but {control.get('note') or 'so did the machine'}")
    more = len(time.get("slows") or []) - top
    if more > 0:
        out.append(f"  and {more} more functions that slow (`leaklab run --json`: time.slows)")
    idle = time.get("idle") or {}
    if idle.get("ratio"):
        out.append(f"idle after the cycles: the app's code ran {idle['ratio']:.0%} of the time ({num(idle['cpu_s'])} s "
                   f"of {num(idle['wall_s'])} s): tasks left running"
                   + "".join(f"; {k} {num(v)} ms" for k, v in list((idle.get("coroutines") or {}).items())[:top]))
    coros = time.get("coroutines") or {}
    if coros:
        out.append("loop time by task (ms/cycle, first -> last): " + ", ".join(
            f"{k} {num(v.get('first'))} -> {num(v.get('last'))}"
            + (f" ({v['verdict']}, {num(v.get('per_cycle'))}/cycle)" if v.get("verdict") == Verdict.SLOWS else "")
            for k, v in list(coros.items())[:top + 2]))
    return out


def format_split(split: dict, top: int = 2) -> list[str]:
    """The first and last cycle's reply and connect, split: the loop held by
    the app (and the code that ran meanwhile), the LLM call, the rest."""
    out = []
    for kind in ("connect", "reply"):
        parts = split.get(kind) or {}
        for which in ("first", "last"):
            p = parts.get(which)
            if not p or p.get("total_ms") is None or (which == "last" and p["cycle"] == parts["first"]["cycle"]):
                continue
            terms = [f"LLM {num(p['llm_ms'])}"] if p.get("llm_ms") is not None else []
            terms.append(f"loop held {num(p.get('blocked_ms'))}")
            untimed = kind == "reply" and p.get("llm_ms") is None
            terms.append(f"{'the rest (the LLM call not timed)' if untimed else 'I/O and other tasks'} "
                         f"{num(p.get('rest_ms'))}")
            code = ", ".join(f"{k} {num(v)}" for k, v in list((p.get("functions") or {}).items())[:top])
            ran = (f"; the app's code ran {num(p['busy_ms'])} ms on the loop during the step" if p.get("busy_ms") else
                   "") + (f": {code}" if code else "")
            out.append(f"{kind} time, cycle {p['cycle']}: {num(p['total_ms'])} ms = " + " + ".join(terms) + ran)
    return out


def format_survivors(summary: dict) -> list[str]:
    """One line per watched type the cycles created that is still alive
    after the timeline, whatever its slope (a flat count can still pin one
    session for good)."""
    s = summary.get("survivors") or {}
    out = []
    for name, n in (s.get("alive") or {}).items():
        still_open = (s.get("open") or {}).get(name, 0)
        opened = f" ({still_open} of them an open session)" if still_open else ""
        out.append(f"survivors: {n} {name} created by the cycles still alive after the timeline{opened}: "
                   "`leaklab why` shows the chain")
    return out


def format_lifecycle(name: str, v: dict) -> str:
    """One ``lifecycle`` line: per object when the run counted objects
    (``ran for 0 of 3 contexts still open when their session ended``), else
    calls against sessions ended."""
    from ..analysis import lifecycle_noun

    calls = f"{v['calls']} calls" + (f" of {v['expected']} expected" if v.get("expected") is not None else "")
    obj = v.get("objects")
    if not obj:
        return f"lifecycle {name}: {calls} (calls only: its objects are not tracked)"
    noun = lifecycle_noun(name)
    if not obj["of"] and not obj["short_lived"]:
        why = f"no {noun} created during the cycles" if not obj["created"] else f"none of the {obj['created']} {noun} created ended with a session"
        return f"lifecycle {name}: {calls} ({why})"
    short = (f"; {obj['short_lived_calls']} on {obj['short_lived']} short-lived {noun} closed while their session was open"
             if obj["short_lived"] else "")
    return f"lifecycle {name}: ran for {obj['ran_for']} of {obj['of']} {noun} still open when their session ended ({calls}{short})"
