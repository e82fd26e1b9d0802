"""Running the checklist: each item's experiment on a fresh session, its
record judged by :mod:`.rules`.

:func:`run_experiment` runs one item in this process (a notebook cell);
:func:`run_checklist_async` runs every item, each in its own process, a
few at a time, when the target can be named again in a child (any target
:func:`~leaklab.targets.resolve_target` made): experiments are independent,
a child starts from a clean heap, and nothing one leaves behind (children,
threads, frozen objects) is measured by the next. The same item on several
backends side by side is :mod:`leaklab.compare`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..session import LeakSession, RunResult
from ..targets import Target, resolve_target
from ..workers import run_child
from . import active
from .charts import chart_data, cost, headline
from .items import Item, get_items, signal_columns
from .rules import INCONCLUSIVE, RULED_OUT, judge_record

#: Items run at a time, each in its own process. The experiments mostly wait
#: (on the backend, timelines, pings): three fit 2 cores (measured: the whole
#: reference checklist 60 s with 2, 45 s with 3, the same verdicts).
DEFAULT_JOBS = 3
#: Seconds after the last cycle: ``"short"``, and ``"release"`` where the
#: target does not say how long it holds things by design (``Target.release_s``).
SHORT_TIMELINE_S = 1.0
RELEASE_TIMELINE_S = 6.0
#: Margin over the server's ping interval + timeout for the ``"ping"`` timeline.
PING_MARGIN_S = 3.0


@dataclasses.dataclass
class Outcome:
    """One item's verdict, the evidence behind it and the record it was judged on."""

    id: str
    title: str
    verdict: str
    evidence: dict[str, Any]
    series: dict[str, list[float | None]] = dataclasses.field(default_factory=dict)
    elapsed_s: float = 0.0
    latency_ms: dict[str, Any] = dataclasses.field(default_factory=dict)
    record: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    #: the measurement that decided the verdict, as data (:func:`~leaklab.checklist.charts.chart_data`)
    chart: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: what one session costs while the cause is present (:func:`~leaklab.checklist.charts.cost`)
    cost: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the decisive measurement in a few words
    headline: str = ""
    scenario: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "verdict": self.verdict,
                "evidence": self.evidence, "series": self.series, "elapsed_s": round(self.elapsed_s, 2),
                "chart": self.chart, "cost": self.cost, "headline": self.headline, "scenario": self.scenario}


def _jsonable(value: Any) -> Any:
    if isinstance(value, RunResult):
        return value.summary().as_dict()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return None if value != value else round(value, 3)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def _timeline_s(item: Item, session: LeakSession) -> float:
    if item.timeline == "ping":
        srv = session.server
        ping = (srv.ping_interval_s or 0.0) + (srv.ping_timeout_s or 0.0) if srv is not None else 0.0
        return ping + PING_MARGIN_S
    if item.timeline == "release":
        # as long as the target says it holds things by design, else a guess
        release = session.target.release_s
        return RELEASE_TIMELINE_S if release is None else max(SHORT_TIMELINE_S, release + 1.5)
    return SHORT_TIMELINE_S


def _proxy_mounted(target: Target, app: Any) -> tuple[bool | None, str]:
    """Whether the proxy route is mounted: ``True``, ``False`` (measured:
    not applicable) or ``None`` (cannot tell: undeclared)."""
    from ..targets.routes import proxy_mounted

    return proxy_mounted(app, target.proxy_path, target.ws_path)


def _children_peak(run: RunResult) -> tuple[float | None, float | None]:
    values = [r.get(k) for r in [*run.records, *run.timeline] for k in ("children", "children_peak")
              if r.get(k) is not None]
    base = run.records[0].get("children") if run.records else None
    return (max(values) if values else None), base


def _series(item: Item, roles: Mapping[str, Any], run: RunResult) -> dict[str, list[Any]]:
    cols = {k for rec in run.records for k in rec}
    out = {}
    for metric in signal_columns(item, roles, cols, limit=12):
        values = [rec.get(metric) for rec in run.records]
        numbers = {v for v in values if isinstance(v, (int, float))}
        # A chart of a constant says nothing; the evidence still cites it.
        if len(numbers) > 1:
            out[metric] = values
    return dict(list(out.items())[:6])


def _curves(item: Item, roles: Mapping[str, Any], rows: list[dict[str, Any]], x: str = "cycle") -> dict[str, list[Any]]:
    """Every signal column of ``item`` per row (constants kept: the chart
    decides what to draw), with the x column (``cycle`` or ``t``)."""
    cols = {k for rec in rows for k in rec}
    metrics = signal_columns(item, roles, cols, limit=12)
    if not rows or not metrics:
        return {}
    return {x: [rec.get(x) for rec in rows], **{m: [rec.get(m) for rec in rows] for m in metrics}}


async def measure(item: Item, session: LeakSession, cycles: int | None = None) -> dict[str, Any]:
    """Run ``item``'s experiment on a started session; the record (plain data)."""
    target = session.target
    roles = target.roles.as_dict()
    record: dict[str, Any] = {"item": item.id, "roles": roles, "runs": {}, "facts": {}, "applicable": True,
                              "reason": "", "error": None, "target": target.name}
    facts = record["facts"]
    if item.applies == "proxy":
        mounted, reason = _proxy_mounted(target, session.app)
        if mounted is None:
            record["error"] = None
            record["facts"]["not_run"] = reason
            record["undecidable"] = reason
            return record
        record["applicable"], record["reason"] = mounted, reason
        if not mounted:
            return record
    options = dataclasses.replace(session.options, timeline_s=_timeline_s(item, session))
    short = dataclasses.replace(session.options, timeline_s=SHORT_TIMELINE_S)
    facts["timeline_s"] = options.timeline_s
    if session.server is not None:
        facts["ping_interval_s"] = session.server.ping_interval_s
        facts["ping_timeout_s"] = session.server.ping_timeout_s

    hook = None
    if item.explain:
        async def hook(sess: LeakSession) -> None:
            with contextlib.suppress(ImportError):
                report = sess.explain()
                facts["retention"] = report.as_dict()

    n = cycles or item.cycles
    main = await session.run(item.scenario, n, options=options, after_cycles=hook)
    record["runs"]["main"] = main.summary()
    record["series"] = _series(item, roles, main)
    record["curves"] = {"main": _curves(item, roles, main.records), "timeline": _curves(item, roles, main.timeline, "t")}
    facts["children_peak"], facts["children_baseline"] = _children_peak(main)
    if item.probe == "close_mcp":
        await active.close_mcp_clients(session, roles, facts)
    elif item.probe == "grow_store":
        # three runs at three store sizes: the fewest cycles a verdict rests on, each
        for name, run in (await active.grow_store(session, roles, facts, item.scenario, 3, options=short)).items():
            record["runs"][name] = run.summary()
    if item.control is not None:
        # The control answers "does it retain without the trigger": its
        # cycles say that; no release to wait for.
        control = await session.run(item.control, n, options=short)
        record["runs"]["control"] = control.summary()
        record["curves"]["control"] = _curves(item, roles, control.records)
    return _jsonable(record)


async def run_experiment(
    item: Item | str,
    target: str | Target = "reference",
    *,
    app_dir: Any = None,
    target_file: Any = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    cycles: int | None = None,
    **session_kwargs: Any,
) -> Outcome:
    """Run one item's experiment on a fresh session, in this process, and judge it.

    Args:
        item: the item or its id.
        target: a :class:`Target` or a name :func:`~leaklab.targets.resolve_target`
            takes (with ``app_dir`` / ``target_file`` / ``faults`` / ``options``).
        cycles: cycles instead of the item's own.
        **session_kwargs: :class:`LeakSession` settings (``step_timeout_s``, ``progress``...).
    """
    if isinstance(item, str):
        (item,) = get_items([item])
    started = time.monotonic()
    session_kwargs.setdefault("runs_dir", False)
    session_kwargs.setdefault("progress", False)
    destroyed: list[str] = []
    loop = asyncio.get_running_loop()
    previous_handler = loop.get_exception_handler()

    def on_loop_error(lp: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        if "destroyed but it is pending" in str(ctx.get("message", "")):
            destroyed.append(repr(ctx.get("task")))
        elif previous_handler is not None:
            previous_handler(lp, ctx)
        else:
            lp.default_exception_handler(ctx)

    record: dict[str, Any]
    loop.set_exception_handler(on_loop_error)
    try:
        session = LeakSession(target, app_dir=app_dir, target_file=target_file, faults=faults, options=options,
                              **session_kwargs)
        record = {"item": item.id, "roles": session.target.roles.as_dict(), "runs": {}, "facts": {},
                  "applicable": True, "reason": "", "error": None, "target": session.target.name}
        missing = [r for r in item.needs if not record["roles"].get(r)]
        if missing:
            # Nothing this experiment measures could be judged: the rule says
            # which role to declare; no backend needs to start for that.
            record["facts"]["not_run"] = f"roles not declared: {', '.join(missing)}"
            loop.set_exception_handler(previous_handler)
            return outcome_of(item, record, time.monotonic() - started)
        await session.start()
        try:
            record = await measure(item, session, cycles)
            gc.collect()
            record["facts"]["tasks_destroyed_pending"] = len(destroyed)
        finally:
            record.setdefault("facts", {})["orphans"] = await session.stop()
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise
    except Exception as exc:  # a step that broke: say so; the next item still runs
        record = locals().get("record") or {"item": item.id, "roles": {}, "runs": {}, "facts": {}}
        record["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        loop.set_exception_handler(previous_handler)
    return outcome_of(item, record, time.monotonic() - started)


def outcome_of(item: Item, record: dict[str, Any], elapsed_s: float = 0.0) -> Outcome:
    """Judge a record (made here or in a child process).

    A role the target did not declare but discovery guessed may confirm a
    cause, never rule one out: a flat signal read at a guessed place may be
    the wrong place."""
    verdict, evidence = judge_record(record)
    guessed = [r for r in item.needs if r in ((record.get("roles") or {}).get("guessed") or ())]
    if verdict == RULED_OUT and guessed:
        evidence = {**evidence, "missing": f"declared role(s) {', '.join(guessed)}",
                    "answer": f"{evidence.get('answer', '')} — but role(s) {', '.join(guessed)} were guessed, "
                              "not declared: declare them to rule this out"}
        verdict = INCONCLUSIVE
    main = (record.get("runs") or {}).get("main") or {}
    if main.get("errors"):
        evidence["step_errors"] = main["errors"][:5]
    latency = main.get("latency_ms") or {}
    chart = chart_data(item, record) if not record.get("error") else {"kind": "none", "panels": [], "flat": {}}
    return Outcome(item.id, item.title, verdict, _jsonable(evidence), record.get("series") or {}, elapsed_s,
                   latency if latency.get("first") is not None else {}, record, chart=_jsonable(chart),
                   cost=_jsonable(cost(item, record, verdict)), headline=headline(chart), scenario=item.scenario)


@dataclasses.dataclass
class ChecklistResult:
    """All verdicts of one checklist run."""

    target: str
    faults: list[str]
    outcomes: list[Outcome]
    elapsed_s: float
    jobs: int = 1
    #: rows the checklist has no item for, shown under its own (the hunt's
    #: findings no item covers): ``{"id", "title", "verdict", "evidence"}``
    extra_rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def latency_split(self) -> dict[str, Any]:
        """The "other causes": reply time split into the LLM call and the
        backend, from the first experiment with text turns."""
        return next((o.latency_ms for o in self.outcomes if o.latency_ms), {})

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "faults": self.faults,
                "items": [o.as_dict() for o in self.outcomes], "latency_split": self.latency_split,
                "elapsed_s": round(self.elapsed_s, 2), "jobs": self.jobs, "extra_rows": self.extra_rows}

    def table(self):
        """The verdict table as a DataFrame (the extra rows last)."""
        import pandas as pd

        rows = [{"id": o.id, "cause": o.title, "verdict": o.verdict, "answer": o.evidence.get("answer", "")}
                for o in self.outcomes]
        rows += [{"id": r["id"], "cause": r["title"], "verdict": r["verdict"],
                  "answer": (r.get("evidence") or {}).get("answer", "")} for r in self.extra_rows]
        return pd.DataFrame(rows, columns=["id", "cause", "verdict", "answer"]).set_index("id")


def _expected_cost(item: Item) -> float:
    """A rough order of an experiment's length: its cycles, times the runs it
    makes (a control, three store sizes), plus its timeline."""
    runs = 1 + (item.control is not None) + (3 if item.probe == "grow_store" else 0)
    turn = 2.0 if item.scenario in ("chat", "switch", "abrupt-chat", "proxy-chat") else 1.0
    wait = {"ping": 10.0, "release": 6.0}.get(item.timeline, 1.0)
    return item.cycles * runs * turn + wait


async def in_child(spec: dict[str, Any], timeout_s: float, *, module: str = "leaklab.checklist.worker",
                   sys_path: Sequence[str] = ()) -> dict[str, Any]:
    """Run one experiment (or, with another ``module``, one unit of work that
    reads a JSON spec on stdin and prints a JSON line) in a fresh
    interpreter (:func:`leaklab.workers.run_child`); its record, or one that
    says why the process gave none. ``sys_path``: folders put first on the
    child's ``sys.path`` (a second checkout of the same package)."""
    done = await run_child(module, spec, timeout_s, sys_path=sys_path)
    if done.record is None:
        return {"item": spec.get("item"), "roles": {}, "runs": {}, "facts": {},
                "error": f"the experiment's process {done.failure}"}
    return done.record


async def run_checklist_async(
    target: str | Target = "reference",
    *,
    app_dir: Any = None,
    target_file: Any = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    items: Iterable[str] | str | None = None,
    progress: bool = True,
    jobs: int | None = None,
    item_timeout_s: float = 600.0,
    **session_kwargs: Any,
) -> ChecklistResult:
    """Run every item's experiment on ``target`` and judge each.

    Args:
        target: a :class:`Target` or a name :func:`~leaklab.targets.resolve_target`
            takes (with ``app_dir`` / ``target_file`` / ``faults`` / ``options``).
        items: ids (all by default).
        jobs: experiments at a time, each in its own process (default 3;
            ``1`` or a hand-made :class:`Target`: one after another in this
            process).
        item_timeout_s: bound on one experiment in a child process.
        **session_kwargs: :class:`LeakSession` settings (``step_timeout_s``...).
    """
    started = time.monotonic()
    chosen = get_items(items)
    # Resolved once, up front: a bad target, fault or option fails before any run.
    resolved = resolve_target(target, app_dir=app_dir, target_file=target_file, faults=faults, options=options)
    jobs = DEFAULT_JOBS if jobs is None else max(1, int(jobs))
    spec = resolved.spec
    bar = None
    if progress:
        from tqdm.auto import tqdm

        tqdm.monitor_interval = 0
        bar = tqdm(total=len(chosen), desc="checklist", unit="item", leave=False)
    outcomes: dict[str, Outcome] = {}
    try:
        if jobs == 1 or spec is None:
            for item in chosen:
                outcomes[item.id] = await run_experiment(item, resolved, **session_kwargs)
                if bar is not None:
                    bar.update(1)
        else:
            gate = asyncio.Semaphore(jobs)
            kwargs = {k: v for k, v in session_kwargs.items() if v is not None}

            async def one(item: Item) -> None:
                async with gate:
                    t0 = time.monotonic()
                    record = await in_child({**spec, "item": item.id, "session": kwargs}, item_timeout_s)
                    outcomes[item.id] = outcome_of(item, record, time.monotonic() - t0)
                if bar is not None:
                    bar.update(1)

            # the slowest experiments first, so the last ones to finish are short
            await asyncio.gather(*(one(i) for i in sorted(chosen, key=_expected_cost, reverse=True)))
    finally:
        if bar is not None:
            bar.close()
    ordered = [outcomes[i.id] for i in chosen if i.id in outcomes]
    return ChecklistResult(resolved.name, sorted(resolved.faults), ordered, time.monotonic() - started,
                           1 if spec is None else jobs)


def run_checklist(
    target: str | Target = "reference",
    *,
    app_dir: Any = None,
    target_file: Any = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    items: Iterable[str] | str | None = None,
    progress: bool = True,
    jobs: int | None = None,
    item_timeout_s: float = 600.0,
    **session_kwargs: Any,
) -> ChecklistResult:
    """Sync form of :func:`run_checklist_async` (owns its event loop): the
    same parameters, documented there."""
    return asyncio.run(run_checklist_async(
        target, app_dir=app_dir, target_file=target_file, faults=faults, options=options, items=items,
        progress=progress, jobs=jobs, item_timeout_s=item_timeout_s, **session_kwargs,
    ))


__all__ = ["ChecklistResult", "Outcome", "in_child", "measure", "outcome_of", "run_checklist", "run_checklist_async",
           "run_experiment", "INCONCLUSIVE", "DEFAULT_JOBS"]
