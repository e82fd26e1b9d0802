"""Run, rank, minimise, confirm, explain and map candidate sequences.

1. **Screen**: every candidate runs a few cycles on one live backend (reused,
   and said so). Each run is judged against its own baseline (its census 0),
   so what an earlier candidate left alive is flat in a later one, not
   growth. A metric is attributed to the first (shortest, plainest)
   candidate that shows it growing cycle after cycle.
2. **Minimise**: steps are dropped one at a time while the finding's first
   metric still leaks (delta debugging on a short list).
3. **Confirm** the minimal sequence on a fresh backend with the full timeline
   (the target's release time, the server's ping when half-open clients
   were made): ``leak``, ``transient`` (released by itself) or ``not
   reproduced``; the survivors' chains are taken there.
4. **Map** each finding to the checklist items whose signals (read through
   the target's roles) match its metrics *and* whose experiment runs the same
   lifecycle (the same steps beyond connect/close/abort); a finding no item's
   experiment runs is **not on the checklist**, with the items whose signals
   it shares named.

Nothing here names a backend's classes, attributes or faults: the metrics are
the census's, the mapping goes through :class:`~leaklab.checklist.items.Item`
signals and the target's roles.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import metrics
from ..checklist.items import ITEMS, signal_columns
from ..analysis.time import MIN_TIME_CYCLES
from ..metrics import ItemVerdict, Kind, Verdict
from ..session import (
    BackendUnresponsive,
    LeakSession,
    RunInterrupted,
    RunOptions,
    default_runs_dir,
    save_json_result,
)
from ..targets import Target, resolve_target
from ..targets.routes import proxy_mounted
from .candidates import candidates, essential_steps, trigger_steps
from .slows import covering_items, screen_slow, slow_signature

__all__ = ["Finding", "HuntResult", "checklist_rows", "hunt", "hunt_async", "leak_signature", "load_findings"]

#: Seconds of timeline after a screening run (growth that outlasts it is a
#: candidate; the confirmation decides leak or transient).
SCREEN_TIMELINE_S = 0.5
SCREEN_SETTLE_S = 0.1
#: Default budget: minutes, not hours.
DEFAULT_BUDGET_S = 300.0

# Process gauges: they move with everything over a few cycles.
_GAUGES = frozenset({"rss_mb", "gc_objects", "tracemalloc_mb"})
# Which metrics say most about a leak, first (a finding is minimised on its first).
# (a kind: every metric of it; a string: the plain resources it begins)
_PRIORITY: tuple[Kind | str, ...] = (
    Kind.TYPE, "children", Kind.TASK, Kind.CONTAINER, Kind.LIFECYCLE, "cache_", "fds", "threads", "tasks",
)


def _priority(metric: str) -> tuple[int, str]:
    kind = metrics.kind_of(metric)
    for i, first in enumerate(_PRIORITY):
        if (kind is first) if isinstance(first, Kind) else (kind is None and metric.startswith(first)):
            return i, metric
    return len(_PRIORITY), metric


def leak_signature(summary: Mapping[str, Any]) -> dict[str, float]:
    """What grows cycle after cycle in a run's summary: metric -> per cycle.

    Counted: watched types, tasks by coroutine, resources (children, fds,
    files, rows), containers and threads whose verdict is ``leak``; a
    lifecycle method that ran for fewer of the ended sessions' objects (or
    calls) than expected. Growth by design (history rows) is ``normal``, not
    counted; process gauges (RSS, gc object counts) and reply times are left
    out: over a few cycles they move with everything, and a slow-down is
    the checklist's to measure (its store probe), not a hunt's.
    """
    out: dict[str, float] = {}

    def add(metric: str, v: Mapping[str, Any] | None) -> None:
        if v and v.get("verdict") == Verdict.LEAK:
            out[metric] = float(v.get("per_cycle") or 0.0)

    for name, v in (summary.get("types") or {}).items():
        add(metrics.name(Kind.TYPE, name), v)
    tasks = summary.get("tasks") or {}
    for name, v in (tasks.get("by_coroutine") or {}).items():
        add(metrics.name(Kind.TASK, name), v)
    for name, v in (summary.get("resources") or {}).items():
        if name not in _GAUGES:
            add(name, v)
    for c in summary.get("containers") or []:
        add(metrics.name(Kind.CONTAINER, c["path"]), c)
    if "threads" in (summary.get("other") or {}):
        add("threads", summary["other"]["threads"])
    judged = max(1, int(summary.get("judged_cycles") or summary.get("cycles") or 1))
    for label, v in (summary.get("lifecycle") or {}).items():
        objects = v.get("objects") or {}
        if objects.get("of"):
            missing = objects["of"] - objects.get("ran_for", 0)
        elif v.get("expected"):
            missing = v["expected"] - (v.get("calls") or 0)
        else:
            missing = 0
        if missing > 0:
            out[metrics.name(Kind.LIFECYCLE, label)] = missing / judged
    return dict(sorted(out.items(), key=lambda kv: _priority(kv[0])))


@dataclasses.dataclass
class Finding:
    """One leaking lifecycle.

    Attributes:
        sequence: the minimal step list (replay: ``leaklab run --scenario '<sequence>'``).
        found_as: the candidate it was first seen in.
        metrics: metric -> per-cycle growth in the screening run (the metrics
            first seen growing in ``found_as``: what the finding is about).
        signature: everything that grew in ``found_as``'s screening run.
        confirmed: ``leak``, ``transient`` or ``not reproduced`` on a fresh
            backend; ``not confirmed (budget)`` when time ran out.
        confirm_metrics: metric -> per cycle in the confirming run.
        lifetime_s: for a transient, how long until it was released.
        items: checklist items whose signals match and whose experiment runs
            this lifecycle; empty: not on the checklist.
        similar: items whose signals match but whose experiment runs another
            sequence.
        chains: the retention groups of the confirming run's survivors.
        minimised: whether minimisation ran to the end.
        by_design: why a transient is the protocol working as designed (a
            half-open client's session held until the server's ping drops
            it, within that ping's interval + timeout); ``None`` otherwise.
        kind: ``leak`` (something grows; ``confirmed`` says leak or
            transient) or ``slows`` (a function's time per cycle grows:
            ``metrics`` is its ``time:`` column; ``confirmed`` is ``slows``
            when a fresh backend shows it too).
        slow: for ``slows``, what :func:`~leaklab.hunt.slows.screen_slow`
            says of the function (file, line, first/last ms, ms/cycle,
            ``scales_with``, the others that slow with it: ``also``).
    """

    sequence: str
    found_as: str
    metrics: dict[str, float]
    signature: dict[str, float] = dataclasses.field(default_factory=dict)
    confirmed: str = "not confirmed (budget)"
    confirm_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    lifetime_s: float | None = None
    items: list[str] = dataclasses.field(default_factory=list)
    similar: list[str] = dataclasses.field(default_factory=list)
    chains: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    minimised: bool = False
    by_design: str | None = None
    kind: str = Verdict.LEAK.value
    slow: dict[str, Any] | None = None

    @property
    def on_checklist(self) -> bool:
        return bool(self.items)

    def describe(self) -> str:
        """What the finding is about, in a line: what grows, or the function
        that slows (with what it scales with)."""
        if self.kind == Verdict.SLOWS and self.slow:
            f = self.slow
            where = f" ({Path(f['file']).name}:{f.get('line')})" if f.get("file") else ""
            first, last, per = (f"{float(f[k]):.3g}" if f.get(k) is not None else "?"
                                for k in ("first", "last", "per_cycle"))
            scales = f"scales with {f['scales_with']}" if f.get("scales_with") else "scales with no stored state measured"
            also = f"; {len(f['also'])} more functions slow with it" if f.get("also") else ""
            return (f"slows: {f['function']}{where}: {first} -> {last} ms/cycle, +{per} ms each cycle; {scales}"
                    + also + ("" if self.items else "; not on the checklist"))
        grows = ", ".join(f"{m} {v:+.2g}/cycle" for m, v in self.metrics.items())
        return f"grows: {grows}" + ("" if self.minimised else " (not fully minimised: budget)")

    def where(self) -> str:
        """``C8`` / ``C2, C3``, or ``not on the checklist (signals like C8's)``."""
        if self.items:
            return ", ".join(self.items)
        like = f" (signals like {', '.join(self.similar)}'s; their experiments run other steps)" if self.similar else ""
        return "not on the checklist" + like

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["on_checklist"] = self.on_checklist
        d["where"] = self.where()
        return d


@dataclasses.dataclass
class HuntResult:
    """What a hunt tried and found; saved as ``hunt.json`` in the runs folder."""

    target: str
    faults: list[str]
    findings: list[Finding]
    tried: list[dict[str, Any]]
    not_tried: list[str]
    budget_s: float
    elapsed_s: float = 0.0
    interrupted: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)
    path: Path | None = None
    #: screened as growing, then released as the protocol designs it (not findings)
    released: list[Finding] = dataclasses.field(default_factory=list)
    #: what opened each tab: ``"synthetic"`` or ``"browser"``
    client: str = "synthetic"
    #: the browser of the screening backend (``client="browser"``): its path, the tabs it opened
    browser: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "faults": self.faults, "findings": [f.as_dict() for f in self.findings],
                "released": [f.as_dict() for f in self.released],
                "tried": self.tried, "not_tried": self.not_tried, "budget_s": self.budget_s,
                "elapsed_s": round(self.elapsed_s, 1), "interrupted": self.interrupted, "notes": self.notes,
                "path": str(self.path) if self.path else None, "client": self.client, "browser": self.browser}

    def frame(self) -> Any:
        import pandas as pd

        rows = [{"sequence": f.sequence, "grows per cycle": ", ".join(f"{m} {v:+.2g}" for m, v in f.metrics.items()),
                 "confirmed": f.confirmed + (f" ({f.lifetime_s:.1f} s)" if f.lifetime_s is not None else ""),
                 "checklist": f.where()} for f in self.findings]
        return pd.DataFrame(rows, columns=["sequence", "grows per cycle", "confirmed", "checklist"])

    def _repr_html_(self) -> str:
        import html

        head = (f"<p>hunt on {html.escape(self.target)}: {len(self.tried)} sequences tried in "
                f"{self.elapsed_s:.0f} s (budget {self.budget_s:.0f} s), {len(self.findings)} leaking"
                + (f"; {len(self.not_tried)} not tried (budget)" if self.not_tried else "") + "</p>")
        if not self.findings:
            return head + "<p>No sequence leaked.</p>"
        return head + self.frame().to_html(index=False, escape=True)


def _map(sequence: str, metrics: Mapping[str, float], roles: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(items whose signals match and whose experiment runs this lifecycle,
    items whose signals match only)."""
    exact, similar = [], []
    steps = essential_steps(sequence)
    for item in ITEMS:
        if not signal_columns(item, roles, metrics, limit=100):
            continue
        trigger = trigger_steps(item.scenario)
        if trigger is not None and essential_steps(trigger) == steps:
            exact.append(item.id)
        else:
            similar.append(item.id)
    return exact, similar


async def _screen(session: LeakSession, sequence: str, cycles: int,
                  options: RunOptions | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    try:
        result = await session.run(sequence, cycles, options=options)
    except BackendUnresponsive as exc:  # this sequence broke every cycle: said, and the hunt goes on
        return {}, {"sequence": sequence, "failed_cycles": cycles, "errors": [str(exc)], "elapsed_s": None,
                    "unresponsive": True}
    s = result.summary()
    info = {"sequence": sequence, "failed_cycles": len(result.failed_cycles),
            "errors": result.errors[:2], "elapsed_s": round(result.elapsed_s, 2)}
    if s.judged_cycles < cycles:  # a failed cycle: not judged on too little
        return {}, info
    slow = screen_slow(s.get("time") or {}, result.records, session.target.roles.as_dict())
    if slow is not None:
        info["slow"] = slow
    return leak_signature(s), info


def _valid(words: list[str]) -> bool:
    from ..driver.scenarios import UnknownScenarioError, steps_scenario

    try:
        steps_scenario(",".join(words))
    except UnknownScenarioError:
        return False
    return True


async def _minimise(session: LeakSession, sequence: str, metric: str, cycles: int, deadline: float,
                    options: RunOptions | None = None) -> tuple[str, bool]:
    """Drop steps while ``metric`` still leaks; (sequence, ran to the end)."""
    words = sequence.split(",")
    changed = True
    while changed:
        changed = False
        for i in range(len(words)):
            if time.monotonic() > deadline:
                return ",".join(words), False
            trial = words[:i] + words[i + 1:]
            if not trial or not _valid(trial):
                continue
            sig, _ = await _screen(session, ",".join(trial), cycles, options)
            if metric in sig:
                words = trial
                changed = True
                break
    return ",".join(words), True


async def _confirm(target: Target, finding: Finding, cycles: int, session_kwargs: Mapping[str, Any]) -> None:
    """The minimal sequence on a fresh backend, with the default timeline."""
    session = LeakSession(target, runs_dir=False, progress=False, **session_kwargs)
    await session.start()
    try:
        result = await session.run(finding.sequence, cycles)
        s = result.summary()
        if finding.kind == Verdict.SLOWS:  # the function slows on a fresh backend too, or not
            again = {f["function"]: f for f in slow_signature(s.get("time") or {}, result.records, {})}
            mine = again.get((finding.slow or {}).get("function"))
            finding.confirmed = Verdict.SLOWS.value if mine else "not reproduced"
            finding.confirm_metrics = {next(iter(finding.metrics)): float(mine["per_cycle"] or 0.0)} if mine else {}
            return
        finding.confirm_metrics = leak_signature(s)
        primary = next(iter(finding.metrics))
        if primary in finding.confirm_metrics:
            finding.confirmed = Verdict.LEAK
        else:
            v = s.metric(primary)
            if v is not None and v.verdict == Verdict.TRANSIENT:
                finding.confirmed = Verdict.TRANSIENT
                finding.lifetime_s = v.lifetime_s
            else:
                finding.confirmed = "not reproduced"
        srv = session.server
        ping = ((srv.ping_interval_s or 0.0) + (srv.ping_timeout_s or 0.0)) if srv is not None else 0.0
        if (finding.confirmed == Verdict.TRANSIENT and "half-open" in essential_steps(finding.sequence) and ping
                and finding.lifetime_s is not None and finding.lifetime_s <= ping + 1.5):
            finding.by_design = (f"released {finding.lifetime_s:.1f} s after the last cycle, within the server's "
                                 f"ping interval + timeout ({ping:.0f} s): a half-open client's session is held "
                                 "until the ping drops it")
        if finding.confirmed in (Verdict.LEAK, Verdict.TRANSIENT) and s.survivors:
            report = session.explain()
            first = target.roles.session_type
            finding.chains = sorted(report.as_dict().get("groups", []),
                                    key=lambda g: (g.get("type") != first, -int(g.get("count") or 0)))
    finally:
        await session.stop()


async def hunt_async(
    target: str | Target = "reference",
    *,
    app_dir: Any = None,
    target_file: Any = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    cycles: int = 3,
    sequences: list[str] | None = None,
    runs_dir: Path | str | bool | None = None,
    progress: bool = True,
    step_timeout_s: float | None = None,
    on_progress: Any = None,
    session: LeakSession | None = None,
    client: str = "synthetic",
    browser: str | os.PathLike[str] | None = None,
    scenarios: Sequence[str] = (),
) -> HuntResult:
    """Search the target's lifecycles for the ones that leak.

    Args:
        target: a :class:`Target` or a name :func:`~leaklab.targets.resolve_target` takes.
        budget_s: seconds for the whole hunt; candidates left when it runs
            out are listed as not tried, findings not minimised or confirmed
            say so.
        cycles: cycles per run (at least 3: fewer cannot be judged).
        sequences: candidate step lists (default: :func:`candidates`).
        scenarios: more candidates, tried after those: step lists or
            scenario files (``leaklab record``'s; a file is not minimised).
        runs_dir: where ``hunt.json`` is saved (``False``: not saved).
        on_progress: ``callable(text)`` for each step (the CLI's bar).
        session: a started :class:`LeakSession` to screen on (its target is
            hunted; it is left running, its own client used); default: one
            made and stopped here.
        client, browser: what opens each tab of every session the hunt makes
            (screening and confirming): ``"synthetic"`` or ``"browser"``, the
            backend's own page in a browser already installed (``browser``:
            its path); see :class:`LeakSession`.
    """
    started = time.monotonic()
    deadline = started + budget_s
    cycles = max(3, int(cycles))
    resolved = (session.target if session is not None else
                resolve_target(target, app_dir=app_dir, target_file=target_file, faults=faults, options=options,
                               watch=watch))
    roles = resolved.roles.as_dict()
    todo: list[str] = list(sequences) if sequences else []
    result = HuntResult(resolved.name, sorted(resolved.faults), [], [], [], budget_s)
    result.notes.append(f"screened on one backend, reused for every candidate, each run against its own "
                        f"baseline; {cycles} cycles each; findings confirmed on a fresh backend")
    kwargs: dict[str, Any] = {"step_timeout_s": step_timeout_s} if step_timeout_s else {}
    if session is not None:  # findings are confirmed with the screening session's client
        client, browser = session.client, session.browser_path
    kwargs.update(client=client, browser=browser)
    result.client = kwargs["client"]
    bar = None

    def tell(text: str) -> None:
        if bar is not None:
            best = result.findings[0].sequence if result.findings else "none yet"
            bar.set_postfix_str(f"{text} | first finding: {best}"[:100])
        if on_progress is not None:
            on_progress(text)

    seen: set[str] = set()
    try:
        own = session is None
        screen = session if session is not None else LeakSession(
            resolved, runs_dir=False, progress=False, settle_s=SCREEN_SETTLE_S, timeline_s=SCREEN_TIMELINE_S, **kwargs)
        quick = dataclasses.replace(screen.options, settle_s=SCREEN_SETTLE_S, timeline_s=SCREEN_TIMELINE_S,
                                    runs_dir=None, progress=False)
        if own:
            await screen.start()
        try:
            if not todo:  # the running app says whether its proxy route is mounted
                mounted, why = proxy_mounted(screen.app, resolved.proxy_path, resolved.ws_path)
                if resolved.proxy_path is not None and not mounted:
                    result.notes.append(f"proxied sequences left out: {why}")
                todo = candidates(proxy=bool(mounted) and resolved.proxy_path is not None,
                                  characters=len(resolved.characters))
            todo += [str(s) for s in scenarios if str(s) not in todo]
            if progress:
                from tqdm.auto import tqdm

                tqdm.monitor_interval = 0
                bar = tqdm(total=len(todo), desc="hunt", unit="seq", leave=False)
            broken = 0
            for i, seq in enumerate(todo):
                if time.monotonic() > deadline:
                    result.not_tried = todo[i:]
                    break
                tell(seq)
                sig, info = await _screen(screen, seq, cycles, quick)
                info["leaks"] = sorted(sig)
                result.tried.append(info)
                broken = broken + 1 if info.get("unresponsive") else 0
                if broken >= 3:
                    result.not_tried = todo[i + 1:]
                    result.notes.append(f"stopped: the backend failed every cycle of {broken} sequences in a row "
                                        f"(last: {info['errors'][0]})")
                    break
                new = {m: v for m, v in sig.items() if m not in seen}
                if new:
                    seen.update(new)
                    result.findings.append(Finding(seq, seq, new, dict(sig)))
                slow = info.get("slow")
                if slow:  # a slow-down: a finding of its own, not minimised
                    metric = metrics.name(Kind.TIME, slow["function"])
                    if metric not in seen:
                        seen.add(metric)
                        result.findings.append(Finding(seq, seq, {metric: float(slow["per_cycle"] or 0.0)},
                                                       kind=Verdict.SLOWS.value, slow=slow))
                if bar is not None:
                    bar.update(1)
            for finding in result.findings:
                if time.monotonic() > deadline:
                    break
                if finding.kind == Verdict.SLOWS:
                    continue
                tell(f"minimising {finding.sequence}")
                primary = next(iter(finding.metrics))
                finding.sequence, finding.minimised = await _minimise(screen, finding.sequence, primary, cycles,
                                                                      deadline, quick)
        finally:
            if screen.browser is not None:  # what opened the tabs, said
                result.browser = {"executable": screen.browser.executable, "tabs": screen.browser.tabs_opened}
                result.notes.append(f"tabs opened by {screen.browser.executable} (the backend's own page): one browser "
                                    f"for the screening backend, {screen.browser.tabs_opened} tabs, each in a "
                                    "context of its own")
            if own:
                await screen.stop()
        for finding in result.findings:
            finding.items, finding.similar = (
                (covering_items((finding.slow or {}).get("scales_with"), roles), []) if finding.kind == Verdict.SLOWS
                else _map(finding.sequence, finding.metrics, roles))
        for finding in result.findings:
            if time.monotonic() > deadline:
                break
            tell(f"confirming {finding.sequence}")
            await _confirm(resolved, finding, cycles, kwargs)
        result.released = [f for f in result.findings if f.by_design]
        result.findings = [f for f in result.findings if not f.by_design]
        for f in result.released:
            result.notes.append(f"{f.sequence}: grew while screened, then {f.by_design}; not a finding")
    except (asyncio.CancelledError, KeyboardInterrupt, RunInterrupted):
        result.interrupted = True
        raise
    finally:
        if bar is not None:
            bar.close()
        result.elapsed_s = time.monotonic() - started
        if runs_dir is not False:
            save_json_result(result, "hunt", runs_dir)
    return result


def hunt(
    target: str | Target = "reference",
    *,
    app_dir: Any = None,
    target_file: Any = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    cycles: int = 3,
    sequences: list[str] | None = None,
    runs_dir: Path | str | bool | None = None,
    progress: bool = True,
    step_timeout_s: float | None = None,
    on_progress: Any = None,
    session: LeakSession | None = None,
    client: str = "synthetic",
    browser: str | os.PathLike[str] | None = None,
    scenarios: Sequence[str] = (),
) -> HuntResult:
    """Sync form of :func:`hunt_async` (owns its event loop): the same
    parameters, documented there."""
    return asyncio.run(hunt_async(
        target, app_dir=app_dir, target_file=target_file, faults=faults, options=options, watch=watch,
        budget_s=budget_s, cycles=cycles, sequences=sequences, runs_dir=runs_dir, progress=progress,
        step_timeout_s=step_timeout_s, on_progress=on_progress, session=session, client=client, browser=browser,
        scenarios=scenarios,
    ))


def load_findings(source: Any = "latest", *, runs_dir: Path | str | None = None,
                  target: str | None = None) -> list[dict[str, Any]]:
    """A hunt's findings, as dicts.

    Args:
        source: a :class:`HuntResult`, a ``hunt.json`` (or its folder), or
            ``"latest"``: the newest hunt saved in ``runs_dir`` (for
            ``target`` when given). ``None``: no findings.

    Raises:
        FileNotFoundError: a path that is not a saved hunt.
    """
    if source is None:
        return []
    if isinstance(source, HuntResult):
        return [f.as_dict() for f in source.findings]
    if source == "latest":
        folder = Path(runs_dir) if runs_dir else default_runs_dir()
        for path in sorted(folder.glob("hunt-*/hunt.json"), key=lambda p: p.stat().st_mtime, reverse=True):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if target is None or data.get("target") == target:
                return list(data.get("findings") or [])
        return []
    path = Path(source)
    if path.is_dir():
        path = path / "hunt.json"
    if not path.is_file():
        raise FileNotFoundError(f"no saved hunt at {source} (a hunt.json, its folder, or 'latest')")
    return list(json.loads(path.read_text(encoding="utf-8")).get("findings") or [])


#: A finding's confirmation as a checklist verdict.
_VERDICT_OF = {Verdict.LEAK: ItemVerdict.CONFIRMED, Verdict.TRANSIENT: ItemVerdict.TRANSIENT,
               Verdict.SLOWS: ItemVerdict.CONFIRMED}


def _fields(d: Mapping[str, Any]) -> dict[str, Any]:
    """A saved finding's dict back to :class:`Finding`'s fields."""
    names = {f.name for f in dataclasses.fields(Finding)}
    return {k: v for k, v in d.items() if k in names}


def checklist_rows(findings: Any) -> list[dict[str, Any]]:
    """The findings no checklist item covers, as rows of the checklist's
    verdict table: ``{"id": "H1", "title", "verdict", "evidence": {"answer"}}``.

    A finding confirmed on a fresh backend is ``confirmed``; one released by
    itself ``transient``; one not reproduced or not confirmed in the budget
    ``inconclusive`` (it was seen once, in the screen)."""
    rows = []
    dicts = [f.as_dict() if isinstance(f, Finding) else dict(f) for f in findings or ()]
    for f in (d for d in dicts if not d.get("on_checklist", bool(d.get("items")))):
        confirmed = str(f.get("confirmed") or "")
        grows = ", ".join(f"{m} {float(v):+.2g}/cycle" for m, v in (f.get("metrics") or {}).items())
        chain = next((" → ".join([*(str(e.get("label")) for e in g["chain"]), str(g.get("type"))])
                      for g in f.get("chains") or [] if g.get("chain")), None)
        life = f" after {f['lifetime_s']:.1f} s" if f.get("lifetime_s") is not None else ""
        answer = (f"found by the hunt, on no item: {f['sequence']} grows {grows or 'nothing measured'}; "
                  f"on a fresh backend: {confirmed}{life}"
                  + (f"; held by {chain}" if chain else "")
                  + f". Replay: leaklab run --scenario '{f['sequence']}'")
        if f.get("similar"):
            answer += f" (signals like {', '.join(f['similar'])}'s; their experiments run other steps)"
        if f.get("kind") == Verdict.SLOWS and f.get("slow"):
            answer = (f"found by the hunt, not on the checklist: {f['sequence']} {Finding(**_fields(f)).describe()}; "
                      f"on a fresh backend: {confirmed}. Replay: leaklab run --scenario '{f['sequence']}' "
                      f"(at least {MIN_TIME_CYCLES} cycles)")
        rows.append({"id": f"H{len(rows) + 1}", "title": f"not on the checklist: {f['sequence']}",
                     "verdict": _VERDICT_OF.get(confirmed, ItemVerdict.INCONCLUSIVE), "evidence": {"answer": answer},
                     "scenario": f["sequence"]})
    return rows
