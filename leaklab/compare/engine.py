"""The same work on two (or more) backends, interleaved, and what changed.

Units of work are checklist items (an experiment and its verdict) and
scenarios (cycles of a step list: the hunt's leaking sequences, or ones the
user names). Each unit runs on every side in a fresh child process; the
sides of one unit run at the same time, so machine noise hits both alike.

A unit's change, side ``before`` to side ``after``:

* an item: its verdict before and after — ``fixed`` (confirmed or
  transient, then ruled out), ``partly fixed`` (confirmed, then transient),
  ``still leaks`` (confirmed on both), ``new leak``, ``worse`` (transient,
  then confirmed), ``unchanged`` (the same otherwise), or ``can't tell`` (inconclusive, or a side that did not run:
  the reason named);
* a scenario: per metric that grows on either side (the hunt's
  :func:`~leaklab.hunt.leak_signature`: watched types, tasks by coroutine,
  resources, containers, lifecycle methods that did not run) — ``fixed``,
  ``still leaks`` or ``new leak``, with the per-cycle numbers of both.

Every row also says whether the change ran (:mod:`.fixlines`): the Python
hunks between the sides' app folders, traced in each unit's child (added
lines on the after side, removed ones on the before side), ``ran N×`` or
``never ran`` per hunk; a verdict left unchanged by a hunk that never ran
says so first, with what the kit measured about its function.

Nothing here names a backend's classes or faults: metrics are the census's,
items the checklist's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..checklist import (
    DEFAULT_JOBS,
    Outcome,
    get_items,
    in_child,
    outcome_of,
    run_experiment,
)
from .. import metrics
from ..hunt import leak_signature, load_findings
from ..metrics import ItemVerdict, Kind, Verdict
from ..session import save_json_result
from ..targets import resolve_target
from .checkouts import AgainstError, Side, app_root, checkouts
from .fixlines import FixChange, coverage_answer, find_change, trace_plan, unit_coverage
from .hunks import python_files
from .timing import side_summaries, unit_time_changes

__all__ = ["Change", "Comparison", "compare", "compare_async", "item_change", "prove_fix", "prove_fix_async",
           "scenario_changes", "the_change", "unit_spec"]

#: Cycles of a scenario unit when not given.
DEFAULT_CYCLES = 5
_LEAKS = frozenset({ItemVerdict.CONFIRMED})
_HALF = frozenset({ItemVerdict.TRANSIENT})
_CLEAN = frozenset({ItemVerdict.RULED_OUT, ItemVerdict.NOT_APPLICABLE})


@dataclasses.dataclass
class Change:
    """One row of the before/after table."""

    unit: str
    kind: str  # "item" | "scenario"
    metric: str
    before: str
    after: str
    change: str
    detail: str = ""
    #: the unit's hunks and whether each ran ("your change: 2 hunks — ...")
    coverage: str = ""
    #: what the coverage says about this change, first in ``detail`` too
    answer: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def item_change(before: str | None, after: str | None) -> metrics.Change:
    """What happened to an item's verdict (``None``: that side did not run)."""
    if before is None or after is None or ItemVerdict.INCONCLUSIVE in (before, after):
        return metrics.Change.CANT_TELL
    if before == after:  # transient on both: the same release, unchanged
        return metrics.Change.STILL_LEAKS if before in _LEAKS else metrics.Change.UNCHANGED
    if before in _LEAKS | _HALF and after in _CLEAN:
        return metrics.Change.FIXED
    if before in _LEAKS and after in _HALF:
        return metrics.Change.PARTLY_FIXED
    if before in _CLEAN and after in _LEAKS | _HALF:
        return metrics.Change.NEW_LEAK
    if before in _HALF and after in _LEAKS:
        return metrics.Change.WORSE
    return metrics.Change.CHANGED


def _lifecycle_text(summary: Mapping[str, Any], label: str) -> str | None:
    v = (summary.get("lifecycle") or {}).get(label)
    if not v:
        return None
    objects = v.get("objects") or {}
    if objects.get("of"):
        return f"ran for {objects.get('ran_for', 0)} of {objects['of']}"
    if v.get("expected"):
        return f"{v.get('calls') or 0} calls of {v['expected']} expected"
    return None


def scenario_changes(unit: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[Change]:
    """Rows for one scenario run on both sides (each a worker's record:
    ``summary`` or ``error``)."""
    if not before or not after or before.get("error") or after.get("error"):
        why = "; ".join(f"{n}: {r.get('error')}" for n, r in (("before", before or {}), ("after", after or {}))
                        if not r or r.get("error")) or "a side did not run"
        return [Change(unit, "scenario", "(run)", "ran" if before and not before.get("error") else "failed",
                       "ran" if after and not after.get("error") else "failed", metrics.Change.CANT_TELL, why)]
    sb, sa = before["summary"], after["summary"]
    lb, la = leak_signature(sb), leak_signature(sa)
    rows = []
    for metric in [*lb, *(m for m in la if m not in lb)]:
        parsed = metrics.parse(metric)
        label = parsed.subject if parsed.kind is Kind.LIFECYCLE else None

        def text(sig: Mapping[str, float], s: Mapping[str, Any], metric: str = metric, label: str | None = label) -> str:
            if label is not None:
                return _lifecycle_text(s, label) or "not measured"
            return f"{sig[metric]:+.2g}/cycle" if metric in sig else "flat"

        change = (metrics.Change.STILL_LEAKS if metric in lb and metric in la
                  else metrics.Change.FIXED if metric in lb else metrics.Change.NEW_LEAK)
        rows.append(Change(unit, "scenario", metric, text(lb, sb), text(la, sa), change))
    if not rows:
        rows.append(Change(unit, "scenario", "(everything measured)", "flat", "flat", metrics.Change.UNCHANGED,
                           f"{sb.get('judged_cycles')} and {sa.get('judged_cycles')} cycles judged"))
    return rows


@dataclasses.dataclass
class Comparison:
    """Before and after, unit by unit.

    Attributes:
        before, after: the two sides.
        rows: the table (:class:`Change`), items first.
        outcomes: item id -> side name -> :class:`~leaklab.checklist.Outcome`.
        runs: scenario -> side name -> the worker's record (summary, records, groups).
        notes: how it was run.
    """

    before: Side
    after: Side
    rows: list[Change]
    outcomes: dict[str, dict[str, Outcome]]
    runs: dict[str, dict[str, dict[str, Any]]]
    elapsed_s: float = 0.0
    notes: list[str] = dataclasses.field(default_factory=list)
    #: where ``compare.json`` was saved (``None``: not saved)
    path: Any = None
    #: the Python hunks between the sides (``None``: not looked at)
    change: FixChange | None = None
    #: unit -> which hunks ran (:func:`~.fixlines.unit_coverage`)
    coverage: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: unit -> run -> the top functions' ms/cycle before -> after (:func:`~.timing.time_changes`)
    times: dict[str, dict[str, list[dict[str, Any]]]] = dataclasses.field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.change] = out.get(r.change, 0) + 1
        return out

    def series(self, unit: str, metric: str) -> dict[str, list[float | None]]:
        """Per-cycle values of ``metric`` on each side (empty where not measured)."""
        out: dict[str, list[float | None]] = {}
        for side in (self.before.name, self.after.name):
            if unit in self.outcomes:
                out[side] = list((self.outcomes[unit].get(side).series or {}).get(metric, [])) \
                    if self.outcomes[unit].get(side) else []
            else:
                records = (self.runs.get(unit, {}).get(side) or {}).get("records") or []
                out[side] = [r.get(metric) for r in records] if any(metric in r for r in records) else []
        return out

    def chains(self, unit: str) -> dict[str, list[str]]:
        """The survivors' chains on each side, one line each."""
        out: dict[str, list[str]] = {}
        for side in (self.before.name, self.after.name):
            lines: list[str] = []
            if unit in self.outcomes and self.outcomes[unit].get(side) is not None:
                held = (self.outcomes[unit][side].evidence or {}).get("held_by") or []
                if held:
                    lines.append(" → ".join(str(e.get("label", "")) for e in held))
            for g in (self.runs.get(unit, {}).get(side) or {}).get("groups") or []:
                chain = " → ".join([*(str(e.get("label", "")) for e in g.get("chain") or []), str(g.get("type"))])
                lines.append(f"{g.get('count')} × {g.get('type')} [{g.get('root_kind')}]: {chain}")
            out[side] = lines
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"before": self.before.as_dict(), "after": self.after.as_dict(),
                "rows": [r.as_dict() for r in self.rows], "counts": self.counts(),
                "items": {u: {s: o.as_dict() for s, o in sides.items()} for u, sides in self.outcomes.items()},
                "scenarios": {u: {s: {k: v for k, v in r.items() if k != "records"} for s, r in sides.items()}
                              for u, sides in self.runs.items()},
                "chains": {u: self.chains(u) for u in [*self.outcomes, *self.runs]},
                "elapsed_s": round(self.elapsed_s, 1), "notes": self.notes,
                "path": str(self.path) if self.path else None,
                "change": self.change.as_dict() if self.change is not None else None, "coverage": self.coverage,
                "times": self.times}

    def table(self) -> Any:
        import pandas as pd

        return pd.DataFrame([{"unit": r.unit, "measure": r.metric, "before": r.before, "after": r.after,
                              "change": r.change, "detail": r.detail} for r in self.rows],
                            columns=["unit", "measure", "before", "after", "change", "detail"])

    def _repr_html_(self) -> str:
        import html

        counts = ", ".join(f"{n} {c}" for c, n in self.counts().items())
        return (f"<p>before: {html.escape(self.before.source)} · after: {html.escape(self.after.source)} · "
                f"{html.escape(counts)} ({self.elapsed_s:.0f} s)</p>" + self.table().to_html(index=False, escape=True))


def unit_spec(side: Side, kind: str, name: str, cycles: int | None, session_kwargs: Mapping[str, Any],
              trace: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON spec one unit's child gets on one side: how to resolve the
    side's target, the item (``kind="item"``) or scenario, its cycles, the
    session's settings (the client and browser among them) and the line
    tracer's plan. An experiment's timeline is its own (the release it
    waits for decides its verdict): ``timeline_s``/``settle_s`` go to
    scenarios only."""
    kwargs = {k: v for k, v in session_kwargs.items() if v is not None}
    if kind == "item":
        spec = {**side.spec, "item": name, "cycles": cycles,
                "session": {k: v for k, v in kwargs.items() if k not in ("timeline_s", "settle_s")}}
    else:
        spec = {**side.spec, "scenario": name, "cycles": cycles or DEFAULT_CYCLES, "session": kwargs}
    return {**spec, "trace": dict(trace)} if trace else spec


async def _run_sides(
    sides: Sequence[Side],
    units: Sequence[tuple[str, str, int | None]],
    *,
    jobs: int,
    timeout_s: float,
    session_kwargs: Mapping[str, Any],
    progress: bool = False,
    traces: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, dict[str, Outcome]], dict[str, dict[str, dict[str, Any]]]]:
    """Every unit on every side, each in a child; a unit's sides queued
    together so they run at the same time. ``traces``: side name -> the
    plan its child traces the unit's run with (:func:`~.fixlines.trace_plan`)."""
    gate = asyncio.Semaphore(max(1, jobs))
    outcomes: dict[str, dict[str, Outcome]] = {}
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        tqdm.monitor_interval = 0
        bar = tqdm(total=len(units) * len(sides), desc="compare", unit="run", leave=False)

    async def one(kind: str, name: str, cycles: int | None, side: Side) -> None:
        async with gate:
            t0 = time.monotonic()
            plan = (traces or {}).get(side.name)
            spec = unit_spec(side, kind, name, cycles, session_kwargs, plan)
            if kind == "item":
                (item,) = get_items([name])
                if plan:  # the same experiment, under the line tracer
                    record = await in_child(spec, timeout_s, module="leaklab.compare.worker", sys_path=side.sys_path)
                else:
                    record = await in_child(spec, timeout_s, sys_path=side.sys_path)
                outcomes.setdefault(name, {})[side.name] = outcome_of(item, record, time.monotonic() - t0)
            else:
                record = await in_child(spec, timeout_s, module="leaklab.compare.worker", sys_path=side.sys_path)
                runs.setdefault(name, {})[side.name] = record
        if bar is not None:
            bar.set_postfix_str(f"{name} on {side.name}"[:60])
            bar.update(1)

    try:
        await asyncio.gather(*(one(kind, name, cycles, side) for kind, name, cycles in units for side in sides))
    finally:
        if bar is not None:
            bar.close()
    return outcomes, runs


def _units(items: Any, scenarios: Iterable[str], sequences: Iterable[str], cycles: int | None
           ) -> list[tuple[str, str, int | None]]:
    from ..driver.scenarios import get_scenario

    out: list[tuple[str, str, int | None]] = []
    seen: set[str] = set()
    for seq in [*sequences, *scenarios]:
        name = get_scenario(seq).name  # a bad one fails before any run
        if name not in seen:
            seen.add(name)
            out.append(("scenario", name, cycles))
    if items not in (None, "none", ""):
        out.extend(("item", i.id, cycles) for i in get_items(items))
    return out


async def compare_async(
    target: str | os.PathLike[str] | None = None,
    *,
    against: str | os.PathLike[str],
    app_dir: Any = None,
    target_file: Any = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
    items: Any = "all",
    scenarios: Iterable[str] = (),
    hunt: Any = "latest",
    cycles: int | None = None,
    jobs: int | None = None,
    item_timeout_s: float = 600.0,
    progress: bool = False,
    runs_dir: Any = None,
    trace_fix: bool = True,
    client: str = "synthetic",
    browser: str | os.PathLike[str] | None = None,
    **session_kwargs: Any,
) -> Comparison:
    """Your code (the target flags) against another version of it.

    Args:
        against: a second checkout's folder, a second target file or import
            path, or a git revision of the repository the code is in
            (checked out into a temporary worktree, removed afterwards).
        items: checklist items run on both (``"all"``, ``"C3,C9"``, ``None``).
        scenarios: step lists or scenario names run on both.
        hunt: a saved hunt (``"latest"``: the newest for this target, if
            any; ``None``: none) whose leaking sequences are run on both.
        cycles: cycles per unit (default: an item's own; 5 for a scenario).
        jobs: runs at a time (default 2: a unit's two sides together).
        runs_dir: where ``compare.json`` is saved (``None``: the runs folder,
            ``$LEAKLAB_RUNS_DIR`` or ``./leaklab-runs``; ``False``: not saved).
        trace_fix: trace which lines of the change ran in each unit (the
            hunks are listed either way; ``False``: not traced).
        client, browser: what opens each tab in every unit's session, on
            both sides: ``"synthetic"`` or ``"browser"`` (the backend's own
            page in a browser already installed, one per unit's process;
            ``browser``: its path); see :class:`~leaklab.session.LeakSession`.

    Raises:
        AgainstError: ``against`` names nothing comparable.
        UnknownItemError, UnknownScenarioError: before anything runs.
    """
    started = time.monotonic()
    jobs = 2 if jobs is None else max(1, int(jobs))
    if client != "synthetic" or browser is not None:  # checked first, then carried to every unit's child
        from ..driver.browser import check_browser

        if client != "browser":
            raise ValueError(f"client must be 'synthetic' or 'browser' (browser= names the browser of 'browser'), "
                             f"not {client!r}")
        check_browser(browser)
        session_kwargs.update(client=client, browser=None if browser is None else os.fspath(browser))
    with checkouts(target, against=against, app_dir=app_dir, target_file=target_file, faults=faults,
                   options=options, watch=watch) as (before, after):
        change = the_change(before, after, against)
        findings = load_findings(hunt, target=after.target) if hunt == "latest" else load_findings(hunt)
        sequences = [f["sequence"] for f in findings if f.get("confirmed") in (Verdict.LEAK, Verdict.TRANSIENT)]
        units = _units(items, scenarios, sequences, cycles)
        if not units:
            raise ValueError("nothing to compare: give items, scenarios or a hunt with findings")
        notes = [f"before: {before.source}", f"after: {after.source}", *before.notes, *after.notes]
        if change is not None and not change.hunks and not _sides_differ(before, after):
            notes.append(f"no code change between the sides ({change.before_root} and {change.after_root}): "
                         "nothing ran")
            result = Comparison(before, after, [], {}, {}, time.monotonic() - started, notes, change=change)
            if runs_dir is not False:
                save_json_result(result, "compare", runs_dir)
            return result
        plans = {"after": trace_plan(change, "after"), "before": trace_plan(change, "before")} \
            if change is not None and trace_fix else {}
        outcomes, runs = await _run_sides((before, after), units, jobs=jobs, timeout_s=item_timeout_s,
                                          session_kwargs=session_kwargs, progress=progress,
                                          traces={k: v for k, v in plans.items() if any(p["lines"] or p["functions"]
                                                                                        for p in v.values())})
    coverage = {unit: _coverage_of(change, plans, kind, unit, n, outcomes, runs) for kind, unit, n in units} \
        if change is not None and change.hunks and trace_fix else {}
    rows: list[Change] = []
    for kind, unit, _ in units:
        if kind == "item":
            b, a = outcomes.get(unit, {}).get("before"), outcomes.get(unit, {}).get("after")
            change_ = item_change(b.verdict if b else None, a.verdict if a else None)
            detail = (a.evidence.get("answer", "") if a else "") if change_ != metrics.Change.CANT_TELL else "; ".join(
                f"{n}: " + " — ".join(str(x) for x in (o.evidence.get("missing"), o.evidence.get("answer"),
                                                       (o.evidence.get("step_errors") or [None])[0]) if x)
                for n, o in (("before", b), ("after", a)) if o is not None and o.verdict == ItemVerdict.INCONCLUSIVE)
            rows.append(Change(unit, "item", "verdict", b.verdict if b else "did not run",
                               a.verdict if a else "did not run", change_, str(detail)))
            _with_coverage(rows[-1], coverage.get(unit), before_leaked=bool(b and b.verdict in _LEAKS | _HALF))
    for kind, unit, _ in units:
        if kind == "scenario":
            for row in scenario_changes(unit, runs.get(unit, {}).get("before"), runs.get(unit, {}).get("after")):
                rows.append(row)
                _with_coverage(row, coverage.get(unit), before_leaked=row.change in (metrics.Change.FIXED,
                                                                                    metrics.Change.STILL_LEAKS))
    notes.append(f"{len(units)} units, each on both sides at the same time ({jobs} runs at a time), each in a fresh "
                 "process")
    if session_kwargs.get("client") == "browser":
        notes.append(f"tabs opened by {browser or 'the browser found on PATH'} (the backend's own page): one browser "
                     "per unit's process, a context per tab")
    if change is not None and change.hunks:
        mechanism = next((c.get("mechanism") for c in coverage.values() if c.get("mechanism")), None)
        notes.append(f"your change: {len(change.hunks)} hunks in {', '.join(change.files)}; " + (
            f"their lines traced in every unit ({mechanism or 'no trace came back'})" if trace_fix else "not traced"))
    if hunt is not None and not sequences:
        notes.append("no saved hunt with findings for this target: only the named units ran")
    result = Comparison(before, after, rows, outcomes, runs, time.monotonic() - started, notes, change=change,
                        coverage=coverage)
    for kind, unit, _ in units:  # the functions' time, before -> after
        times = unit_time_changes(*(side_summaries(kind, unit, s, outcomes, runs) for s in ("before", "after")))
        if times:
            result.times[unit] = times
    if runs_dir is not False:
        save_json_result(result, "compare", runs_dir)
    return result


def the_change(before: Side, after: Side, against: Any = None) -> FixChange | None:
    """The Python hunks between the sides' own code (``None``: a side's code
    can't be found).

    Raises:
        AgainstError: the before side's folder shares no Python file with the
            app's (it is not a version of the app), before anything runs.
    """
    b, a = app_root(before), app_root(after)
    if b is None or a is None:
        return None
    if b.is_dir() and a.is_dir():
        mine = set(python_files(a))
        if mine and not mine & set(python_files(b)):
            raise AgainstError(f"--against {against if against is not None else b}: {b} is not a version of the app "
                               f"in {a}: none of its Python files is there")
    return find_change(b, a)


def _sides_differ(before: Side, after: Side) -> bool:
    """Whether the sides differ in anything but their folders (another
    import path, target file contents, fault switches)."""
    keys = ("app_dir", "target_file")
    if {k: v for k, v in before.spec.items() if k not in keys} != {k: v for k, v in after.spec.items() if k not in keys}:
        return True
    fb, fa = before.spec.get("target_file"), after.spec.get("target_file")
    if fb and fa and fb != fa:
        try:
            return open(fb, "rb").read() != open(fa, "rb").read()
        except OSError:
            return True
    return False


def _coverage_of(change: FixChange, plans: Mapping[str, Any], kind: str, unit: str, cycles: int | None,
                 outcomes: Mapping[str, Mapping[str, Outcome]], runs: Mapping[str, Mapping[str, Mapping[str, Any]]]
                 ) -> dict[str, Any]:
    """One unit's coverage from its two children's records."""
    if kind == "item":
        records = {s: (o.record if o is not None else {}) for s, o in outcomes.get(unit, {}).items()}
        summaries = list(((records.get("after") or {}).get("runs") or {}).values())
        n = cycles or get_items([unit])[0].cycles
    else:
        records = dict(runs.get(unit, {}))
        summaries = [(records.get("after") or {}).get("summary") or {}]
        n = cycles or DEFAULT_CYCLES
    after, before = records.get("after") or {}, records.get("before") or {}
    return unit_coverage(change, after.get("fix_trace"), before.get("fix_trace"), plans=plans,
                         summaries=[s for s in summaries if isinstance(s, Mapping)], roles=after.get("roles") or {},
                         cycles=n)


def _with_coverage(row: Change, coverage: Mapping[str, Any] | None, *, before_leaked: bool) -> None:
    if not coverage:
        return
    row.coverage = coverage.get("line", "")
    row.answer = coverage_answer(row.change, coverage, before_leaked=before_leaked)
    if row.answer:
        row.detail = row.answer + (f" — {row.detail}" if row.detail else "")


def compare(
    target: str | os.PathLike[str] | None = None,
    *,
    against: str | os.PathLike[str],
    app_dir: Any = None,
    target_file: Any = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
    items: Any = "all",
    scenarios: Iterable[str] = (),
    hunt: Any = "latest",
    cycles: int | None = None,
    jobs: int | None = None,
    item_timeout_s: float = 600.0,
    progress: bool = False,
    runs_dir: Any = None,
    trace_fix: bool = True,
    client: str = "synthetic",
    browser: str | os.PathLike[str] | None = None,
    **session_kwargs: Any,
) -> Comparison:
    """Sync form of :func:`compare_async` (owns its event loop): the same
    parameters, documented there."""
    return asyncio.run(compare_async(
        target, against=against, app_dir=app_dir, target_file=target_file, faults=faults, options=options,
        watch=watch, items=items, scenarios=scenarios, hunt=hunt, cycles=cycles, jobs=jobs,
        item_timeout_s=item_timeout_s, progress=progress, runs_dir=runs_dir, trace_fix=trace_fix, client=client,
        browser=browser, **session_kwargs,
    ))


#: The reference's C8 variants: the faulty backend, exactly the proposed fix,
#: and the full fix, each with and without C9.
FIX_VARIANTS: dict[str, tuple[str, ...]] = {
    "faulty (C8)": ("C8",),
    "proposed fix": ("C8-proposed",),
    "full fix": (),
    "faulty + C9": ("C8", "C9"),
    "proposed fix + C9": ("C8-proposed", "C9"),
    "full fix + C9": ("C9",),
}


async def prove_fix_async(
    item: str = "C8",
    target: str = "reference",
    variants: Mapping[str, Sequence[str]] | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    cycles: int | None = None,
    jobs: int | None = None,
    item_timeout_s: float = 600.0,
    **session_kwargs: Any,
) -> dict[str, Outcome]:
    """One experiment on several fault sets of a backend with planted faults,
    side by side: the same code path as :func:`compare_async`, the variants
    being the checkouts. The default variants answer CHECKLIST.md's last
    question (:data:`FIX_VARIANTS`).

    Args:
        jobs: variants at a time, each in its own process (default 3; ``1``:
            one after another in this process).
    """
    variants = variants or FIX_VARIANTS
    (chosen,) = get_items([item])
    # Resolved up front: a bad target, fault or option fails before any run.
    resolved = {name: resolve_target(target, faults=list(faults), options=options) for name, faults in variants.items()}
    jobs = DEFAULT_JOBS if jobs is None else max(1, int(jobs))
    if jobs == 1 or any(t.spec is None for t in resolved.values()):
        return {name: await run_experiment(chosen, t, cycles=cycles, **session_kwargs) for name, t in resolved.items()}
    sides = [Side(name, dict(t.spec or {}), source=f"{target} with faults {', '.join(t.faults) or 'none'}")
             for name, t in resolved.items()]
    outcomes, _ = await _run_sides(sides, [("item", chosen.id, cycles)], jobs=jobs, timeout_s=item_timeout_s,
                                   session_kwargs=session_kwargs)
    return {name: outcomes[chosen.id][name] for name in resolved}


def prove_fix(
    item: str = "C8",
    target: str = "reference",
    variants: Mapping[str, Sequence[str]] | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    cycles: int | None = None,
    jobs: int | None = None,
    item_timeout_s: float = 600.0,
    **session_kwargs: Any,
) -> dict[str, Outcome]:
    """Sync form of :func:`prove_fix_async` (owns its event loop): the same
    parameters, documented there."""
    return asyncio.run(prove_fix_async(
        item, target, variants, options=options, cycles=cycles, jobs=jobs, item_timeout_s=item_timeout_s,
        **session_kwargs,
    ))
