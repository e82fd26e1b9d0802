"""``leaklab`` command line: a thin layer over the calls the notebooks make."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faults", default="none", help="fault ids: C1,...,C9, C8-proposed, all or none (reference backend)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)")


def _add_target_args(p: argparse.ArgumentParser) -> None:
    """The flags every command that runs a backend takes, with one meaning."""
    g = p.add_argument_group("target (the backend to run in-process)")
    g.add_argument("--target", default=None,
                   help="'reference' (default), 'olv' (with --app-dir), a target file (.toml/.yaml) "
                        "or 'package.module:factory'")
    g.add_argument("--app-dir", default=None, metavar="DIR",
                   help="your app folder, for --target olv (overrides a target file's app_dir)")
    g.add_argument("--target-file", default=None, metavar="FILE", help="a target file (TOML or YAML); same as --target FILE")
    _add_backend_args(g)
    g.add_argument("--watch", action="append", default=[], metavar="TYPE",
                   help="another type to count: ClassName or package.module:Qualname (repeatable)")
    g.add_argument("--step-timeout", type=float, default=None, metavar="SECONDS",
                   help="bound on every protocol step (default: 60 s for the first cycle, then 4x the slowest connect)")
    g.add_argument("--runs-dir", default=None, metavar="DIR",
                   help="where runs are saved (default $LEAKLAB_RUNS_DIR or ./leaklab-runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leaklab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the reference backend on 127.0.0.1 until Ctrl-C")
    _add_backend_args(p)
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("run", help="drive session cycles against a backend and measure each one")
    _add_target_args(p)
    p.add_argument("--scenario", default="chat", help="open-close, chat, switch, switch-then-close, abrupt-chat, "
                   "reconnect-storm, proxy-chat, or a step list: 'connect,switch,text-until-synth,close' "
                   "(what `leaklab hunt` prints)")
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--settle", type=float, default=0.3, help="seconds to wait after each cycle before the census")
    p.add_argument("--timeline", type=float, default=None, help="seconds of sampling after the last cycle")
    p.add_argument("--tracemalloc", action="store_true", help="trace Python allocations")
    p.add_argument("--no-collect", action="store_true",
                   help="leave garbage collection as the backend has it (no full collection before each census: "
                        "RSS shows what the cycles cost as they run; cyclic garbage is not measured)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("why", help="run a scenario, then show who keeps the survivors alive")
    _add_target_args(p)
    p.add_argument("--scenario", default="switch-then-close", help="a scenario name or a step list, as for run")
    p.add_argument("--cycles", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_why)

    p = sub.add_parser("checklist", help="C1-C9 as experiments: a measured verdict for each")
    _add_target_args(p)
    p.add_argument("--items", default="all", help="C1,...,C9 or all")
    p.add_argument("--jobs", type=int, default=3, help="experiments at a time, each in its own process (default 3)")
    p.add_argument("--hunt", default=None, metavar="latest|PATH",
                   help="add rows for a saved hunt's findings no item covers: 'latest' (this target's newest in "
                        "the runs folder) or a hunt.json")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_checklist)

    p = sub.add_parser("hunt", help="search the protocol's lifecycles for the ones that leak, minimise and map them")
    _add_target_args(p)
    p.add_argument("--budget", type=float, default=300.0, metavar="SECONDS",
                   help="seconds for the whole hunt (default 300)")
    p.add_argument("--cycles", type=int, default=3, help="cycles per candidate (at least 3)")
    p.add_argument("--sequences", action="append", default=[], metavar="STEPS",
                   help="a candidate step list to try instead of the generated ones (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_hunt)

    p = sub.add_parser("compare", help="your code against another version of it (a folder or a git revision): "
                                       "fixed / still leaks / new leak / unchanged")
    _add_target_args(p)
    p.add_argument("--against", required=True, metavar="FOLDER|REVISION",
                   help="the version before your change: a second checkout's folder, a second target file or "
                        "import path, or a git revision of your app's repository (checked out into a temporary "
                        "worktree, removed afterwards)")
    p.add_argument("--items", default="all", help="checklist items run on both: C1,...,C9, all or none (default all)")
    p.add_argument("--scenario", action="append", default=[], metavar="STEPS",
                   help="a scenario or step list run on both (repeatable)")
    p.add_argument("--hunt", default="latest", metavar="latest|PATH|none",
                   help="a saved hunt whose leaking sequences run on both (default: this target's latest, if any)")
    p.add_argument("--cycles", type=int, default=None, help="cycles per unit (default: an item's own; 5 a scenario)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, each in its own process (default 2: a "
                                                      "unit's two sides together)")
    p.add_argument("--timeline", type=float, default=None, metavar="SECONDS",
                   help="seconds of sampling after a scenario's last cycle (default: the target's release time)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("report", help="execute the notebooks headless and write one offline HTML report")
    _add_target_args(p)
    p.add_argument("--cycles", type=int, default=None, help="cycles for every notebook (default: each notebook's own)")
    p.add_argument("--out", default="report", help="output folder (default: report/)")
    p.add_argument("--jobs", type=int, default=2, help="notebooks executed at a time, each in its own kernel (default 2)")
    p.add_argument("--against", default=None, metavar="FOLDER|REVISION",
                   help="your code before the change (a folder or a git revision): the report opens with the "
                        "before/after table (see `leaklab compare`)")
    p.add_argument("--notebooks", default=None, metavar="DIR",
                   help="run your edited copies in DIR (see `leaklab notebooks`) instead of the kit's")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("notebooks", help="copy the notebooks (stripped) into a folder of yours, to open in JupyterLab")
    p.add_argument("dir", nargs="?", default="leaklab-notebooks", metavar="DIR",
                   help="the folder (default: ./leaklab-notebooks)")
    p.add_argument("--force", action="store_true", help="overwrite notebooks there that differ from the kit's")
    p.set_defaults(func=_cmd_notebooks)
    return parser


class _TargetArgs:
    """What the target flags say, checked once: the same for every command."""

    def __init__(self, args: argparse.Namespace) -> None:
        from .backend import UnknownFaultError, UnknownOptionError, parse_option_pairs
        from .targets import UnknownTargetError, resolve_target

        if "" not in sys.path:
            sys.path.insert(0, "")  # `--target mypkg.app:factory` from the current folder, as python -m does
        if args.step_timeout is not None and not args.step_timeout > 0:
            raise UsageError("--step-timeout must be a positive number of seconds")
        try:
            self.options = parse_option_pairs(args.option)
        except UnknownOptionError as exc:
            raise UsageError(str(exc)) from None
        self.faults = args.faults
        self.watch = {w.rpartition(":")[2].rpartition(".")[2]: w for w in args.watch}
        self.app_dir = args.app_dir
        self.target_file = args.target_file
        self.name = args.target or ("reference" if args.target_file is None else None)
        try:
            self.target = resolve_target(self.name, app_dir=self.app_dir, target_file=self.target_file,
                                         faults=self.faults, options=self.options, watch=self.watch)
        except (UnknownFaultError, UnknownOptionError, UnknownTargetError) as exc:
            raise UsageError(str(exc)) from None
        self.session_kwargs = {"step_timeout_s": args.step_timeout, "runs_dir": args.runs_dir}


def _backend_app(args: argparse.Namespace):
    from .backend import (
        UnknownFaultError,
        UnknownOptionError,
        create_app,
        parse_option_pairs,
    )

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

    from .driver.scenarios import UnknownScenarioError, get_scenario
    from .serving import ServerStartError
    from .session import BackendUnresponsive, RunInterrupted, run

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.cycles < 1:
        raise UsageError("--cycles must be at least 1")
    try:
        get_scenario(args.scenario)
    except UnknownScenarioError as exc:
        raise UsageError(str(exc)) from None
    ta = _TargetArgs(args)
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


def _cmd_why(args: argparse.Namespace) -> int:
    import json

    from .driver.scenarios import UnknownScenarioError, get_scenario
    from .serving import ServerStartError
    from .session import RunInterrupted, run_async

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.cycles < 1:
        raise UsageError("--cycles must be at least 1")
    try:
        get_scenario(args.scenario)
    except UnknownScenarioError as exc:
        raise UsageError(str(exc)) from None
    ta = _TargetArgs(args)
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
    report = reports[0] if reports else None
    out = report.as_dict() if report is not None else {"groups": [], "elapsed_s": 0.0}
    out.update(run_id=result.run_id, target=result.target, scenario=result.scenario, faults=result.faults,
               cycles=result.cycles_done, errors=result.errors, target_notes=result.target_notes)
    if args.json:
        print(json.dumps(out, default=str))
    else:
        print(f"why: target={result.target} scenario={result.scenario} cycles={result.cycles_done}")
        print(report if report is not None and report.groups else "no survivors: nothing created by the cycles is alive")
        if result.errors:
            print("errors: " + "; ".join(result.errors[:3]))
    return 0


def _cmd_checklist(args: argparse.Namespace) -> int:
    import json

    from .checklist import UnknownItemError, get_items, run_checklist

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    try:
        get_items(args.items)
    except UnknownItemError as exc:
        raise UsageError(str(exc)) from None
    ta = _TargetArgs(args)
    try:
        if args.jobs < 1:
            raise UsageError("--jobs must be at least 1")
        findings = None
        if args.hunt is not None:
            from .hunt import checklist_rows, load_findings

            try:
                findings = load_findings(args.hunt, target=ta.target.name if args.hunt == "latest" else None)
            except (FileNotFoundError, ValueError) as exc:
                raise UsageError(f"--hunt: {exc}") from None
        result = run_checklist(ta.target, items=args.items, progress=not args.json, jobs=args.jobs,
                               step_timeout_s=args.step_timeout)
        if findings is not None:
            result.extra_rows = checklist_rows(findings)
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
    for r in result.extra_rows:
        print(f"{r['id']:<4} {r['verdict']:<15} {r['title']}")
        print(f"     {r['evidence'].get('answer', '')}")
    if args.hunt is not None and not result.extra_rows:
        print(f"hunt ({args.hunt}): every finding is on the checklist, or there were none")
    lat = result.latency_split
    if lat:
        llm, backend = lat.get("llm") or {}, lat.get("backend") or {}
        print(f"reply time (ms, first -> last cycle): whole {_num(lat.get('first'))} -> {_num(lat.get('last'))} "
              f"({lat.get('verdict')}); LLM call {_num(llm.get('first'))} -> {_num(llm.get('last'))} "
              f"({llm.get('verdict')}); backend {_num(backend.get('first'))} -> {_num(backend.get('last'))} "
              f"({backend.get('verdict')})")
    return 0


def _cmd_hunt(args: argparse.Namespace) -> int:

    from .driver.scenarios import UnknownScenarioError, get_scenario
    from .hunt import hunt

    logging.basicConfig(level=logging.CRITICAL, format="%(levelname)s %(name)s: %(message)s")
    if not args.budget > 0:
        raise UsageError("--budget must be a positive number of seconds")
    for seq in args.sequences:
        try:
            get_scenario(seq)
        except UnknownScenarioError as exc:
            raise UsageError(str(exc)) from None
    ta = _TargetArgs(args)
    try:
        result = hunt(ta.target, budget_s=args.budget, cycles=args.cycles, sequences=args.sequences or None,
                      runs_dir=args.runs_dir, progress=not args.json, step_timeout_s=args.step_timeout)
    except KeyboardInterrupt:
        print("interrupted (what was found so far is saved in the runs folder)", file=sys.stderr)
        return 130
    return _print_result(result, args.json, format_hunt)


def _print_result(result: Any, as_json: bool, text: Any) -> int:
    """One JSON object (``--json``) or the command's text form; exit 0."""
    import json

    print(json.dumps(result.as_dict(), default=str) if as_json else text(result))
    return 0


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
        grows = ", ".join(f"{m} {v:+.2g}/cycle" for m, v in f.metrics.items())
        life = f" ({f.lifetime_s:.1f} s)" if f.lifetime_s is not None else ""
        lines.append(f"{f.sequence}: {f.confirmed}{life}; checklist: {f.where()}")
        lines.append(f"    grows: {grows}" + ("" if f.minimised else " (not fully minimised: budget)"))
        if f.found_as != f.sequence:
            lines.append(f"    found as {f.found_as}")
        for g in f.chains[:2]:
            chain = " → ".join(e.get("label", "?") for e in g.get("chain") or [])
            lines.append(f"    {g.get('count')} × {g.get('type')} [{g.get('root_kind')}]: {chain}")
        lines.append(f"    replay: leaklab run --scenario '{f.sequence}'   why: leaklab why --scenario '{f.sequence}'")
    if result.path:
        lines.append(f"saved: {result.path}")
    return "\n".join(lines)


def _cmd_compare(args: argparse.Namespace) -> int:

    from .checklist import UnknownItemError
    from .compare import AgainstError, compare
    from .driver.scenarios import UnknownScenarioError

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.cycles is not None and args.cycles < 1:
        raise UsageError("--cycles must be at least 1")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    ta = _TargetArgs(args)
    hunt = None if args.hunt in ("none", "") else args.hunt
    try:
        result = compare(ta.name, against=args.against, app_dir=ta.app_dir, target_file=ta.target_file,
                         faults=ta.faults if ta.name != "reference" else None, options=ta.options or None,
                         watch=ta.watch or None, items=None if args.items == "none" else args.items,
                         scenarios=args.scenario, hunt=hunt, cycles=args.cycles, jobs=args.jobs,
                         progress=not args.json, step_timeout_s=args.step_timeout, timeline_s=args.timeline,
                         runs_dir=args.runs_dir)
    except (AgainstError, UnknownItemError, UnknownScenarioError, FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return _print_result(result, args.json, format_comparison)


def format_comparison(result: Any) -> str:
    """The before/after table as text, then the chains on each side."""
    counts = ", ".join(f"{n} {c}" for c, n in result.counts().items())
    lines = [f"compare ({result.elapsed_s:.0f} s): {counts}", *(f"  {n}" for n in result.notes)]
    width = max((len(r.unit) for r in result.rows), default=4)
    for r in result.rows:
        lines.append(f"{r.unit:<{width}}  {r.metric:<34} {r.before:>22} -> {r.after:<22} {r.change}")
        if r.detail and r.change in ("can't tell", "fixed", "new leak", "worse"):
            lines.append(f"{'':<{width}}    {r.detail[:220]}")
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


def _cmd_report(args: argparse.Namespace) -> int:
    if args.cycles is not None and args.cycles < 1:
        raise UsageError("--cycles must be at least 1")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.notebooks is not None:
        from .resources import MissingNotebooksError, check_notebooks_dir

        try:
            check_notebooks_dir(args.notebooks)
        except MissingNotebooksError as exc:
            raise UsageError(str(exc)) from None
    ta = _TargetArgs(args)  # a bad target fails here, before any kernel starts
    if args.against is not None and ta.name == "reference" and ta.target_file is None:
        raise UsageError("--against compares your code with another version of it: give --target olv --app-dir, "
                         "--target-file or an import path (the reference's fixes are notebook 04's variants)")
    try:
        return _report(args, ta)
    except KeyboardInterrupt:  # the build has shut its kernels down
        print("interrupted", file=sys.stderr)
        return 130


def _report(args: argparse.Namespace, ta: _TargetArgs) -> int:
    import time

    from tqdm import tqdm

    from .report.build import REFERENCE_ONLY, build_report
    from .report.notebooks import NOTEBOOKS

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
        build = build_report(args.out, target=ta.name or "reference", app_dir=ta.app_dir, target_file=ta.target_file,
                             faults=explicit_faults, options=ta.options or None, step_timeout_s=args.step_timeout,
                             cycles=args.cycles, concurrency=args.jobs, env=env, against=args.against,
                             notebooks_dir=Path(args.notebooks) if args.notebooks else None,
                             on_start=bar.set_description, on_progress=progress)
    finally:
        bar.close()
    for name, why in build.skipped.items():
        print(f"  {name:<26} skipped: {why}", file=sys.stderr)
    print(f"report built in {time.monotonic() - started:.1f} s: {build.path.resolve()}")
    return 1 if build.failed else 0


def _cmd_notebooks(args: argparse.Namespace) -> int:
    from .resources import NotebooksExistError, copy_notebooks

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
        lines.append(f"{name:<58} {_num(v.get('start')):>9} {_num(v.get('end')):>9} {_num(v.get('per_cycle')):>8}  {v.get('verdict')}{life}")

    for name, v in summary.get("types", {}).items():
        row(f"type {name}", v)
    row("asyncio tasks", summary["tasks"])
    for name, v in summary["tasks"].get("by_coroutine", {}).items():
        if v.get("verdict") != "none":
            row(f"  task {name}", v)
    for name, v in summary.get("resources", {}).items():
        row(name, v)
    flat = 0
    for c in summary.get("containers", []):
        if c.get("verdict") in ("none", None):
            flat += 1
        else:
            row(f"container {c['path']}", c)
    if flat:
        lines.append(f"{flat} more containers reachable from the roots measured flat")
    lat = summary.get("latency_ms") or {}
    if lat.get("first") is not None:
        lines.append(f"reply latency (ms): first {_num(lat['first'])}, last {_num(lat['last'])}, {_num(lat['per_cycle'])}/cycle: {lat['verdict']}")
    conn = lat.get("connect") or {}
    if conn.get("first") is not None:
        lines.append(f"connect latency (ms): first {_num(conn['first'])}, last {_num(conn['last'])}, "
                     f"{_num(conn['per_cycle'])}/cycle: {conn['verdict']}")
    for name, v in summary.get("lifecycle", {}).items():
        lines.append(format_lifecycle(name, v))
    memory = summary.get("memory") or {}
    for part, label in (("cyclic", "cyclic garbage"), ("rss", "memory not in objects")):
        v = memory.get(part) or {}
        if v.get("verdict") not in (None, "none"):
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
    from .analysis import lifecycle_noun

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
    from ._platform import stop_as_interrupt

    stop_as_interrupt()


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
