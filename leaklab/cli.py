"""``leaklab`` command line: a thin layer over the calls the notebooks make."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faults", default="none", help="fault ids: C1,...,C9, C8-proposed, all or none")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leaklab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the reference backend on 127.0.0.1 until Ctrl-C")
    _add_backend_args(p)
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("run", help="drive session cycles against a backend and measure each one")
    p.add_argument("--target", default="reference",
                   help="'reference', 'olv' (with --app-dir), a target file (.toml/.yaml) or 'package.module:factory'")
    p.add_argument("--app-dir", default=None, help="the app folder for --target olv (overrides a target file's app_dir)")
    p.add_argument("--target-file", default=None, metavar="FILE", help="a target file (TOML or YAML); same as --target FILE")
    p.add_argument("--scenario", default="chat", help="open-close, chat, switch, switch-then-close, abrupt-chat, reconnect-storm, proxy-chat")
    p.add_argument("--cycles", type=int, default=10)
    _add_backend_args(p)
    p.add_argument("--settle", type=float, default=0.3, help="seconds to wait after each cycle before the census")
    p.add_argument("--timeline", type=float, default=None, help="seconds of sampling after the last cycle")
    p.add_argument("--tracemalloc", action="store_true", help="trace Python allocations")
    p.add_argument("--runs-dir", default=None, help="where runs are saved (default data/runs)")
    p.add_argument("--watch", action="append", default=[], metavar="TYPE",
                   help="another type to count: ClassName or package.module:Qualname (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("why", help="run a scenario, then show who keeps the survivors alive")
    p.add_argument("--target", default="reference")
    p.add_argument("--scenario", default="switch-then-close")
    p.add_argument("--cycles", type=int, default=5)
    _add_backend_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_why)

    p = sub.add_parser("checklist", help="C1-C9 as experiments: a measured verdict for each")
    p.add_argument("--target", default="reference")
    _add_backend_args(p)
    p.add_argument("--items", default="all", help="C1,...,C9 or all")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_checklist)

    p = sub.add_parser("report", help="execute the notebooks headless and write one offline HTML report")
    p.add_argument("--target", default="reference", help="'reference' or an import path 'package.module:factory'")
    p.add_argument("--cycles", type=int, default=None, help="cycles for every notebook (default: each notebook's own)")
    p.add_argument("--out", default="report", help="output folder (default: report/)")
    p.add_argument("--jobs", type=int, default=2, help="notebooks executed at a time, each in its own kernel (default 2)")
    p.set_defaults(func=_cmd_report)
    return parser


def _backend_app(args: argparse.Namespace):
    from .backend import UnknownFaultError, UnknownOptionError, create_app, parse_option_pairs

    try:
        return create_app(args.faults, parse_option_pairs(args.option))
    except (UnknownFaultError, UnknownOptionError) as exc:
        raise UsageError(str(exc)) from None


def _cmd_serve(args: argparse.Namespace) -> int:
    from .serving import serve

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = _backend_app(args)

    async def main() -> None:
        async with serve(app, port=args.port, uvicorn_options=app.state.uvicorn_options) as srv:
            faults = ",".join(sorted(app.state.faults)) or "none"
            print(f"leaklab reference backend (faults: {faults})", flush=True)
            print(srv.url("/client-ws"), flush=True)
            if app.state.enable_proxy:
                print(srv.url("/proxy-ws"), flush=True)
            print("Ctrl-C to stop", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("stopped", flush=True)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import json

    from .backend import UnknownFaultError, UnknownOptionError, parse_option_pairs
    from .driver.scenarios import UnknownScenarioError, get_scenario
    from .attach import OLV_PROFILE, is_target_file, load_target
    from .serving import ServerStartError
    from .session import RunInterrupted, run
    from .target import UnknownTargetError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if "" not in sys.path:
        sys.path.insert(0, "")  # `--target mypkg.app:factory` from the current folder, as python -m does
    if args.cycles < 1:
        raise UsageError("--cycles must be at least 1")
    try:
        get_scenario(args.scenario)
        options = parse_option_pairs(args.option)
        watch = {w.rpartition(":")[2].rpartition(".")[2]: w for w in args.watch}
        target = args.target_file or args.target
        if target == OLV_PROFILE or is_target_file(target):
            target = load_target(target, app_dir=args.app_dir, faults=args.faults, options=options, watch=watch)
        elif args.app_dir:
            raise UsageError("--app-dir goes with --target olv or a target file")
        result = run(
            target, args.scenario, args.cycles, faults=args.faults, options=options,
            settle_s=args.settle, timeline_s=args.timeline, trace_memory=args.tracemalloc,
            runs_dir=args.runs_dir, progress=not args.json,
            watch=watch,
        )
    except (UnknownFaultError, UnknownOptionError, UnknownScenarioError, UnknownTargetError) as exc:
        raise UsageError(str(exc)) from None
    except ServerStartError as exc:
        print(f"leaklab: backend did not start: {exc}", file=sys.stderr)
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


def _cmd_why(args: argparse.Namespace) -> int:
    import json

    from .backend import UnknownFaultError, UnknownOptionError, parse_option_pairs
    from .driver.scenarios import UnknownScenarioError, get_scenario
    from .session import run_async
    from .target import UnknownTargetError

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if "" not in sys.path:
        sys.path.insert(0, "")
    reports = []

    async def explain(session) -> None:
        reports.append(session.explain())

    try:
        get_scenario(args.scenario)
        result = asyncio.run(run_async(
            args.target, args.scenario, args.cycles, faults=args.faults, options=parse_option_pairs(args.option),
            runs_dir=False, progress=not args.json, timeline_s=0.5, after_cycles=explain,
        ))
    except (UnknownFaultError, UnknownOptionError, UnknownScenarioError, UnknownTargetError) as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    report = reports[0] if reports else None
    out = report.as_dict() if report is not None else {"groups": [], "elapsed_s": 0.0}
    out.update(run_id=result.run_id, scenario=result.scenario, faults=result.faults, cycles=result.cycles_done)
    if args.json:
        print(json.dumps(out, default=str))
    else:
        print(report if report is not None and report.groups else "no survivors: nothing created by the cycles is alive")
    return 0


def _cmd_checklist(args: argparse.Namespace) -> int:
    import json

    from .backend import UnknownFaultError, UnknownOptionError, parse_option_pairs
    from .checklist import UnknownItemError, run_checklist
    from .target import UnknownTargetError

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        result = run_checklist(args.target, faults=args.faults, options=parse_option_pairs(args.option),
                               items=args.items, progress=not args.json)
    except (UnknownFaultError, UnknownOptionError, UnknownItemError, UnknownTargetError) as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.as_dict(), default=str))
        return 0
    print(f"checklist: target={result.target} faults={','.join(result.faults) or 'none'} ({result.elapsed_s:.0f} s)")
    for o in result.outcomes:
        print(f"{o.id:<4} {o.verdict:<15} {o.title}")
        print(f"     {o.evidence.get('answer', '')}")
    lat = result.latency_split
    if lat:
        llm, backend = lat.get("llm") or {}, lat.get("backend") or {}
        print(f"reply time (ms, first -> last cycle): whole {_num(lat.get('first'))} -> {_num(lat.get('last'))} "
              f"({lat.get('verdict')}); LLM call {_num(llm.get('first'))} -> {_num(llm.get('last'))} "
              f"({llm.get('verdict')}); backend {_num(backend.get('first'))} -> {_num(backend.get('last'))} "
              f"({backend.get('verdict')})")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    if args.cycles is not None and args.cycles < 1:
        raise UsageError("--cycles must be at least 1")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.target != "reference" and ":" not in args.target:
        raise UsageError(f"unknown target {args.target!r}; valid: reference, or an import path 'package.module:factory'")
    try:
        return _report(args)
    except KeyboardInterrupt:  # the build has shut its kernels down
        print("interrupted", file=sys.stderr)
        return 130


def _report(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from .report.build import REFERENCE_ONLY, build_report
    from .report.notebooks import NOTEBOOKS

    started = time.monotonic()
    tqdm.monitor_interval = 0  # no monitor thread left behind
    total = sum(1 for n in NOTEBOOKS if args.target == "reference" or n not in REFERENCE_ONLY)
    print(f"executing {total} notebooks (target {args.target}); kernel logs in {args.out}/logs/", file=sys.stderr, flush=True)
    bar = tqdm(total=total, unit="notebook", file=sys.stderr)

    def progress(run) -> None:
        bar.write(f"  {run.name:<26} {run.elapsed_s:6.1f} s  " + ("ok" if run.ok else f"FAILED: {run.error}"), file=sys.stderr)
        bar.update(1)

    try:
        build = build_report(args.out, target=args.target, cycles=args.cycles, concurrency=args.jobs,
                             on_start=bar.set_description, on_progress=progress)
    finally:
        bar.close()
    for name, why in build.skipped.items():
        print(f"  {name:<26} skipped: {why}", file=sys.stderr)
    print(f"report built in {time.monotonic() - started:.1f} s: {build.path.resolve()}")
    return 1 if build.failed else 0


def format_summary(summary: dict) -> str:
    """A readable verdict table of one run."""
    lines = [
        f"run {summary['run_id']}: target={summary['target']} scenario={summary['scenario']} "
        f"faults={','.join(summary['faults']) or 'none'} cycles={summary['cycles']} ({summary['elapsed_s']} s)",
        f"{'metric':<58} {'start':>9} {'end':>9} {'/cycle':>8}  verdict",
    ]

    def row(name: str, v: dict) -> None:
        life = f" (lifetime {v['lifetime_s']:.1f} s)" if v.get("lifetime_s") is not None else ""
        lines.append(f"{name:<58} {_num(v.get('start')):>9} {_num(v.get('end')):>9} {_num(v.get('per_cycle')):>8}  {v.get('verdict')}{life}")

    for name, v in summary.get("types", {}).items():
        row(f"type {name}", v)
    row("asyncio tasks", summary["tasks"])
    for name, v in summary["tasks"].get("by_coroutine", {}).items():
        if v.get("verdict") != "none":
            row(f"  task {name}", v)
    for name, v in summary.get("resources", {}).items():
        row(name, v)
    for c in summary.get("containers", []):
        row(f"container {c['path']}", c)
    lat = summary.get("latency_ms") or {}
    if lat.get("first") is not None:
        lines.append(f"reply latency (ms): first {_num(lat['first'])}, last {_num(lat['last'])}, {_num(lat['per_cycle'])}/cycle: {lat['verdict']}")
    for name, v in summary.get("lifecycle", {}).items():
        lines.append(f"lifecycle {name}: {v['calls']} calls of {v['expected']} expected")
    orphans = summary.get("orphans") or {}
    lines.append("after shutdown: " + ", ".join(f"{k} {v}" for k, v in orphans.items()))
    if summary.get("errors"):
        lines.append("errors: " + "; ".join(summary["errors"][:5]))
    lines.append(f"saved: {summary.get('path')}")
    return "\n".join(lines)


def _num(x: object) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.2f}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def _own_interrupts() -> None:
    # A shell starts background jobs with SIGINT ignored, and asyncio only
    # turns Ctrl-C into a clean cancellation when the default handler is in
    # place: restore it, and let SIGTERM take the same clean path.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``leaklab`` console script."""
    _own_interrupts()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"leaklab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
