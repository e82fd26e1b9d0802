"""The users' checklist (C1–C9) as experiments with measured verdicts.

Each :class:`Item` is data: where in the users' code, the hypothesis, when it
applies, the experiment (scenario, cycles, options) and the rule that turns
the measured summary into a verdict with evidence. :func:`run_checklist`
runs the experiments on a target; :func:`prove_fix` runs one experiment on
several fault sets side by side.

Verdicts: ``confirmed`` (the cause is present and measured), ``transient``
(it retains, then releases; lifetime given), ``ruled_out`` (the experiment
could have shown it and did not), ``not_applicable`` (the target does not
have the feature), ``inconclusive`` (the experiment could not run or the
signal is missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .session import LeakSession, RunResult
from .targets import Target, resolve_target

VERDICTS = ("confirmed", "transient", "ruled_out", "not_applicable", "inconclusive")


class UnknownItemError(ValueError):
    """A checklist id that does not exist."""


@dataclasses.dataclass
class Outcome:
    """One item's verdict and the evidence behind it."""

    id: str
    title: str
    verdict: str
    evidence: dict[str, Any]
    series: dict[str, list[float | None]] = dataclasses.field(default_factory=dict)
    elapsed_s: float = 0.0
    latency_ms: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "verdict": self.verdict,
                "evidence": self.evidence, "series": self.series, "elapsed_s": round(self.elapsed_s, 2)}


@dataclasses.dataclass
class Experiment:
    """What one experiment measured: its runs, plus extra facts it gathered."""

    runs: list[RunResult]
    facts: dict[str, Any]
    applicable: bool = True
    reason: str = ""
    error: str | None = None

    @property
    def summary(self) -> dict[str, Any]:
        return self.runs[0].summary()


Rule = Callable[[Experiment], tuple[str, dict[str, Any]]]
Probe = Callable[[LeakSession, dict[str, Any]], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Item:
    """One candidate cause as an experiment.

    Attributes:
        id: stable id (C1..C9).
        title: the cause in the users' words.
        where: where in the users' code.
        hypothesis: what would be true if the cause is real.
        question: what the verdict answers.
        scenario: the trigger scenario.
        cycles: cycles per run.
        options: backend options the experiment needs.
        signals: the metrics the rule reads.
        rule: measured summary -> (verdict, evidence).
        after: extra in-process step after the run (before the session stops).
        after_cycles: in-process step after the last cycle, before the
            timeline (while a transient retention still holds).
        applies: ``target -> (applies, reason)``, checked before running.
        timeline_s: sampling after the last cycle; ``None``: long enough for
            the target's ping timeout and heavy init (C7, C8 need it).
    """

    id: str
    title: str
    where: str
    hypothesis: str
    question: str
    scenario: str
    cycles: int
    rule: Rule
    signals: tuple[str, ...] = ()
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    after: Probe | None = None
    after_cycles: Probe | None = None
    applies: Callable[[Target, Any], tuple[bool, str]] | None = None
    timeline_s: float | None = 1.0


# -- helpers for rules ------------------------------------------------------

def _series(run: RunResult, metric: str) -> list[float | None]:
    return [rec.get(metric) for rec in run.records]


def _container(summary: dict[str, Any], predicate: Callable[[str], bool]) -> dict[str, Any] | None:
    matches = [c for c in summary["containers"] if predicate(c["path"]) and c["verdict"] != "none"]
    return max(matches, key=lambda c: c["per_cycle"], default=None)


def _verdict_of(v: dict[str, Any] | None) -> str:
    return (v or {}).get("verdict", "none")


# -- C1 ---------------------------------------------------------------------

def _proxy_applies(target: Target, app: Any) -> tuple[bool, str]:
    enabled = getattr(getattr(app, "state", None), "enable_proxy", None)
    if enabled is None:
        enabled = target.proxy_path is not None and any(
            getattr(r, "path", None) == target.proxy_path for r in getattr(app, "routes", ())
        )
    return (bool(enabled), "proxy enabled in the config" if enabled else "enable_proxy is off: no /proxy-ws route")


def _rule_c1(exp: Experiment) -> tuple[str, dict[str, Any]]:
    s = exp.summary
    forward = {k: v for k, v in s["tasks"]["by_coroutine"].items() if "forward" in k.lower()}
    lost = exp.facts.get("tasks_destroyed_pending", 0)
    worst = max(forward.items(), key=lambda kv: kv[1]["per_cycle"], default=(None, None))
    evidence = {"forward_tasks": forward, "tasks_destroyed_while_pending": lost,
                "answer": ""}
    if worst[1] is not None and worst[1]["verdict"] in ("leak", "transient"):
        evidence["answer"] = (f"{worst[0]} tasks are retained, pending: +{worst[1]['per_cycle']:.1f} per cycle "
                              f"({worst[1]['start']:.0f} -> {worst[1]['end']:.0f}); none were lost")
        return ("confirmed" if worst[1]["verdict"] == "leak" else "transient"), evidence
    if lost:
        evidence["answer"] = f"{lost} forward tasks were destroyed while pending (lost, not retained)"
        return "confirmed", evidence
    evidence["answer"] = "forward tasks finish or are cancelled with their client; none retained or lost"
    return "ruled_out", evidence


# -- C2 ---------------------------------------------------------------------

def _rule_c2(exp: Experiment) -> tuple[str, dict[str, Any]]:
    s = exp.summary
    memory = _container(s, lambda p: p.startswith("default_context") and "memory" in p)
    llm = s["latency_ms"].get("llm") or {}
    evidence = {"memory_container": memory, "llm_ms": llm, "answer": ""}
    if memory and memory["verdict"] == "leak":
        evidence["answer"] = (f"{memory['path']} grows by {memory['per_cycle']:.1f} messages per session and is "
                              f"shared (it lives on the default context); time in the LLM call "
                              f"{_fmt(llm.get('first'))} -> {_fmt(llm.get('last'))} ms")
        return "confirmed", evidence
    evidence["answer"] = "no memory on a shared object grows with sessions; each agent's memory is bounded and freed"
    return "ruled_out", evidence


# -- C3 ---------------------------------------------------------------------

async def _close_mcp_clients(session: LeakSession, facts: dict[str, Any]) -> None:
    """Call ``aclose()`` on every live MCP client from this task, as a
    disconnect handler would, and count the children left: separates "close
    leaves subprocesses" (C3) from "close never runs" (C9)."""
    names = [n for n in session.target.watched_types if "MCP" in n]
    if not names:
        facts["mcp_type"] = None
        return
    from . import probes

    before = probes.process_snapshot(count_gc_objects=False).children
    clients = session._tracker.instances(names[0])
    facts["mcp_clients_alive"] = len(clients)
    facts["mcp_clients_closed_by_backend"] = sum(1 for c in clients if getattr(c, "closed", False))
    for client in clients:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.aclose(), 10)
    del clients
    await asyncio.sleep(1.0)
    facts["children_before_close"] = before
    facts["children_after_close"] = probes.process_snapshot(count_gc_objects=False).children


def _rule_c3(exp: Experiment) -> tuple[str, dict[str, Any]]:
    s = exp.summary
    f = exp.facts
    children = s["resources"].get("children", {})
    aclose = next((v for k, v in s["lifecycle"].items() if k.endswith("aclose")), None)
    evidence = {"children": children, "aclose_calls": aclose, **{k: f.get(k) for k in (
        "mcp_clients_alive", "children_before_close", "children_after_close")}, "answer": ""}
    if f.get("mcp_type", 1) is None or "children_after_close" not in f:
        evidence["answer"] = "no MCP client type watched on this target"
        return "inconclusive", evidence
    baseline = children.get("start") or 0
    if f["children_after_close"] > baseline:
        evidence["answer"] = (f"after aclose() ran on every MCP client, {f['children_after_close'] - baseline:.0f} "
                              "stdio subprocesses were still running")
        return "confirmed", evidence
    if _verdict_of(children) == "leak":
        evidence["answer"] = ("children grew while sessions ended, but aclose() reaps them when it is called: "
                              "close is not reached (see C9)")
    else:
        evidence["answer"] = "aclose() reaps every stdio subprocess"
    return "ruled_out", evidence


# -- C4 ---------------------------------------------------------------------

def _rule_c4(exp: Experiment) -> tuple[str, dict[str, Any]]:
    s = exp.summary
    files = s["resources"].get("cache_files", {})
    size = s["resources"].get("cache_bytes", {})
    evidence = {"cache_files": files, "cache_bytes": size, "answer": ""}
    if not files:
        evidence["answer"] = "no cache directory declared by the target"
        return "inconclusive", evidence
    if files["verdict"] == "leak":
        per = files["per_cycle"]
        bytes_per = (size or {}).get("per_cycle") or 0
        evidence["cycles_to_1000_files"] = round(1000 / per) if per > 0 else None
        evidence["answer"] = (f"+{per:.1f} audio files ({bytes_per / 1024:.0f} KiB) per abrupt close, never "
                              f"removed; their 1000-file mark after ~{evidence['cycles_to_1000_files']} closes")
        return "confirmed", evidence
    evidence["answer"] = "audio files are removed on every path, abrupt close included"
    return "ruled_out", evidence


# -- C5 ---------------------------------------------------------------------

async def _inflate_history(session: LeakSession, facts: dict[str, Any]) -> None:
    """Does reply time depend on the table's size? Grow the history table
    (copies of its own rows) to a few hundred rows, run the turns, grow it
    four times more, run them again. A bounded read costs the same at both
    sizes (it is already full); a whole-table read costs four times more."""
    res = session.target.resources(session.app) if session.app is not None else {}
    db = res.get("history_db")
    if db is None or not Path(db).exists():
        facts["history_db"] = None
        return
    facts["rows_initial"] = _count_rows(Path(db))
    for phase, rows in (("small", 200), ("large", 800)):
        _inflate_sqlite(Path(db), min_rows=rows)
        facts[f"rows_{phase}"] = _count_rows(Path(db))
        facts[f"run_{phase}"] = await session.run(facts["scenario"], facts["cycles"])


def _count_rows(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        return sum(con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables)


def _inflate_sqlite(db: Path, *, min_rows: int) -> int:
    """Double every table by copying its rows (primary keys left to SQLite)
    until it has ``min_rows``; returns the rows before."""
    before = _count_rows(db)
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            cols = [c[1] for c in con.execute(f'PRAGMA table_info("{table}")') if not c[5]]
            if not cols:
                continue
            names = ", ".join(f'"{c}"' for c in cols)
            for _ in range(20):
                n = con.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
                if n == 0 or n >= min_rows:
                    break
                con.execute(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM "{table}"')
            con.commit()
    return before


def _rule_c5(exp: Experiment) -> tuple[str, dict[str, Any]]:
    f = exp.facts
    small: RunResult | None = f.get("run_small")
    large: RunResult | None = f.get("run_large")
    evidence: dict[str, Any] = {k: f.get(k) for k in ("rows_initial", "rows_small", "rows_large")}
    evidence["db_rows"] = exp.summary["resources"].get("db_rows")
    if small is None or large is None:
        evidence["answer"] = "no SQLite history store declared by the target"
        return "inconclusive", evidence
    metric = "llm_ms" if any("llm_ms" in r for r in small.records) else "latency_end_ms"
    a = [r[metric] for r in small.records[1:] if r.get(metric) is not None]
    b = [r[metric] for r in large.records[1:] if r.get(metric) is not None]
    if not a or not b:
        evidence["answer"] = "no reply latency measured"
        return "inconclusive", evidence
    ma, mb = statistics.median(a), statistics.median(b)
    evidence.update({f"{metric}_small_table": round(ma, 1), f"{metric}_large_table": round(mb, 1)})
    sizes = f"{f['rows_small']} -> {f['rows_large']} rows"
    if mb > 1.5 * ma and mb - ma > 20:
        evidence["answer"] = (f"table {sizes}: time in the LLM call {ma:.0f} -> {mb:.0f} ms; "
                              "each turn reads the whole table")
        return "confirmed", evidence
    evidence["answer"] = (f"table {sizes}: reply time {ma:.0f} -> {mb:.0f} ms; the per-turn read is "
                          "bounded, rows grow by design")
    return "ruled_out", evidence


# -- C6 ---------------------------------------------------------------------

def _rule_c6(exp: Experiment) -> tuple[str, dict[str, Any]]:
    s = exp.summary
    engine = _container(s, lambda p: p.startswith("default_context.") and "engine" in p and "agent" not in p)
    evidence = {"container": engine, "answer": ""}
    if engine and engine["verdict"] == "leak":
        evidence["answer"] = (f"{engine['path']} (a shared engine) keeps one entry per client that ever "
                              f"connected: +{engine['per_cycle']:.1f} per session")
        return "confirmed", evidence
    evidence["answer"] = "no container in a shared engine grows with sessions"
    return "ruled_out", evidence


# -- C7 ---------------------------------------------------------------------

def _rule_c7(exp: Experiment) -> tuple[str, dict[str, Any]]:
    s = exp.summary
    conns = _container(s, lambda p: p.endswith("client_connections"))
    evidence = {"client_connections": conns, "answer": ""}
    if conns is None:
        evidence["answer"] = "client_connections never grew: every connection was dropped at once"
        return "ruled_out", evidence
    if conns["verdict"] == "leak":
        evidence["answer"] = (f"half-open clients stay in client_connections: +{conns['per_cycle']:.1f} per burst, "
                              "still there at the end")
        return "confirmed", evidence
    life = s["types"].get("ServiceContext", {}).get("lifetime_s")
    evidence["answer"] = ("half-open clients are detected and removed"
                          + (f" after about {life:.1f} s (ping timeout)" if life else ""))
    return "ruled_out", evidence


# -- C8 ---------------------------------------------------------------------

async def _explain_survivors(session: LeakSession, facts: dict[str, Any]) -> None:
    """Right after the cycles: who keeps the contexts alive (retention chains)."""
    try:
        report = session.explain()
    except ImportError:
        return
    facts["retention"] = report.as_dict()


def _rule_c8(exp: Experiment) -> tuple[str, dict[str, Any]]:
    s = exp.summary
    ctx = s["types"].get("ServiceContext")
    init_tasks = {k: v for k, v in s["tasks"]["by_coroutine"].items() if "init" in k.lower()}
    evidence: dict[str, Any] = {"ServiceContext": ctx, "init_tasks": init_tasks, "answer": ""}
    groups = [g for g in (exp.facts.get("retention") or {}).get("groups") or [] if g.get("type") == "ServiceContext"]
    if groups:
        g = groups[0]
        evidence["held_by"] = g.get("chain")
        evidence["root_kind"] = g.get("root_kind")
        evidence["deep_bytes"] = g.get("deep_bytes")
        evidence["retained_bytes"] = g.get("retained_bytes")
    if ctx is None:
        evidence["answer"] = "ServiceContext is not watched on this target"
        return "inconclusive", evidence
    held = ""
    if groups:
        chain = " -> ".join(e.get("label", "") for e in groups[0].get("chain", [])[:3])
        held = f"; held by {chain}"
    if ctx["verdict"] == "leak":
        evidence["answer"] = f"+{ctx['per_cycle']:.1f} ServiceContext per switch-then-close, never released{held}"
        return "confirmed", evidence
    if ctx["verdict"] == "transient":
        evidence["answer"] = (f"ServiceContext retained after close, released after about "
                              f"{ctx['lifetime_s']:.1f} s (when the init task ends){held}")
        return "transient", evidence
    evidence["answer"] = "no ServiceContext outlives its connection, even when closed inside the init window"
    return "ruled_out", evidence


# -- C9 ---------------------------------------------------------------------

def _rule_c9(exp: Experiment) -> tuple[str, dict[str, Any]]:
    s = exp.summary
    close = next((v for k, v in s["lifecycle"].items() if k.endswith("Context.close")), None)
    evidence = {"close": close, "lifecycle": s["lifecycle"], "answer": ""}
    if close is None or not close.get("expected"):
        evidence["answer"] = "no ServiceContext.close counted on this target"
        return "inconclusive", evidence
    if close["calls"] < close["expected"]:
        evidence["answer"] = f"close() ran {close['calls']} times for {close['expected']} disconnects"
        return "confirmed", evidence
    evidence["answer"] = f"close() ran once per disconnect ({close['calls']} of {close['expected']})"
    return "ruled_out", evidence


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.0f}"


ITEMS: tuple[Item, ...] = (
    Item("C1", "Fire-and-forget forward tasks in the proxy queue", "proxy_message_queue.py line 114",
         "each proxied message leaves an untracked task that is retained or lost",
         "does the fire-and-forget forward retain tasks, or lose them?", "proxy-chat", 4, _rule_c1,
         ("task:*forward*",), applies=_proxy_applies),
    Item("C2", "Agent memory grows without bound", "agent/agents/basic_memory_agent.py",
         "conversation memory on a shared agent grows per session and slows the LLM call",
         "does agent memory grow across sessions, and does close() clear it?", "chat", 5, _rule_c2,
         ("container:default_context.*memory", "llm_ms")),
    Item("C3", "MCP client leaves stdio subprocesses behind", "mcpp/mcp_client.py aclose()",
         "after aclose() the MCP server subprocesses keep running", "are children reaped when close runs?",
         "chat", 4, _rule_c3, ("children",), after=_close_mcp_clients),
    Item("C4", "TTS audio files pile up in cache/", "conversations/tts_manager.py lines 162-164",
         "a failed or cancelled turn leaves its audio files", "do files grow with abrupt closes, how fast?",
         "abrupt-chat", 3, _rule_c4, ("cache_files", "cache_bytes")),
    Item("C5", "Chat history store grows and slows things down", "chat_history_manager.py store_message",
         "each turn reads the whole history table, so replies slow as it grows",
         "does reply time depend on the table's size?", "chat", 2, _rule_c5, ("db_rows", "llm_ms"),
         after=_inflate_history),
    Item("C6", "Shared engines accumulate per-client state", "websocket_handler._init_service_context",
         "an engine shared from default_context_cache keeps state per client_uid",
         "does a shared engine's state grow with sessions?", "open-close", 4, _rule_c6,
         ("container:default_context.*engine*",)),
    Item("C7", "Reconnect storms and half-open connections", "routes.py client-ws endpoint",
         "half-open clients stay in client_connections forever", "are dead connections detected?",
         "reconnect-storm", 3, _rule_c7, ("container:handler.client_connections",), timeline_s=None),
    Item("C8", "Untracked heavy init task on character switch", "service_context.py line 585",
         "closing right after switch-config leaves a ServiceContext held by the init task",
         "retained forever or for a while, by what, how many bytes?", "switch-then-close", 3, _rule_c8,
         ("type:ServiceContext", "task:*init*"), after_cycles=_explain_survivors, timeline_s=None),
    Item("C9", "close() never runs on disconnect", "websocket_handler.handle_disconnect",
         "handle_disconnect pops the context before looking it up", "is close() ever called?",
         "open-close", 3, _rule_c9, ("lifecycle:ServiceContext.close",)),
)


def get_items(ids: Iterable[str] | str | None = None) -> list[Item]:
    """Items by id (all by default).

    Raises:
        UnknownItemError: listing valid ids.
    """
    if ids is None or ids == "all":
        return list(ITEMS)
    wanted = [i.strip().upper() for i in (ids.split(",") if isinstance(ids, str) else ids) if i.strip()]
    by_id = {i.id: i for i in ITEMS}
    bad = [i for i in wanted if i not in by_id]
    if bad:
        raise UnknownItemError(f"unknown checklist item {bad[0]!r}; valid: {', '.join(by_id)}")
    return [by_id[i] for i in wanted]


async def run_experiment(
    item: Item,
    target: str | Target = "reference",
    *,
    app_dir: Any = None,
    target_file: Any = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    cycles: int | None = None,
    **session_kwargs: Any,
) -> Outcome:
    """Run one item's experiment on a fresh session and judge it.

    Args:
        item: the checklist item.
        target: a :class:`Target` or a name :func:`~leaklab.targets.resolve_target`
            takes (with ``app_dir`` / ``target_file``).
        faults: fault ids; options: backend options (a name only).
        cycles: cycles instead of the item's own.
        **session_kwargs: :class:`LeakSession` settings (``step_timeout_s``...).
    """
    started = time.monotonic()
    opts = {**dict(options or {}), **dict(item.options)}
    session_kwargs.setdefault("timeline_s", item.timeline_s)
    session = LeakSession(target, app_dir=app_dir, target_file=target_file, faults=faults, options=opts,
                          runs_dir=session_kwargs.pop("runs_dir", False),
                          progress=session_kwargs.pop("progress", False), **session_kwargs)
    exp = Experiment(runs=[], facts={"scenario": item.scenario, "cycles": cycles or item.cycles})
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

    loop.set_exception_handler(on_loop_error)
    try:
        await session.start()
        try:
            if item.applies is not None:
                exp.applicable, exp.reason = item.applies(session.target, session.app)
            if exp.applicable:
                hook = None
                if item.after_cycles is not None:
                    step = item.after_cycles

                    async def hook(sess: LeakSession) -> None:
                        await step(sess, exp.facts)

                exp.runs.append(await session.run(item.scenario, cycles or item.cycles, after_cycles=hook))
                if item.after is not None:
                    await item.after(session, exp.facts)
                gc.collect()
                exp.facts["tasks_destroyed_pending"] = len(destroyed)
        finally:
            exp.facts["orphans"] = await session.stop()
    except Exception as exc:  # a step that broke: say so, keep going with the next item
        exp.error = f"{type(exc).__name__}: {exc}"
    finally:
        loop.set_exception_handler(previous_handler)
    if exp.error is not None:
        verdict, evidence = "inconclusive", {"answer": f"experiment failed: {exp.error}"}
    elif not exp.applicable:
        verdict, evidence = "not_applicable", {"answer": exp.reason}
    else:
        verdict, evidence = item.rule(exp)
        if exp.runs and exp.runs[0].errors:
            evidence["step_errors"] = exp.runs[0].errors[:5]
    series = {}
    if exp.runs:
        for metric in _signal_columns(item, exp.runs[0]):
            series[metric] = _series(exp.runs[0], metric)
    evidence = _jsonable(evidence)
    latency = _jsonable(exp.summary["latency_ms"]) if exp.runs else {}
    return Outcome(item.id, item.title, verdict, evidence, series, time.monotonic() - started,
                   latency if latency.get("first") is not None else {})


def _signal_columns(item: Item, run: RunResult) -> list[str]:
    import fnmatch

    cols = sorted({k for rec in run.records for k in rec})
    out = []
    for pattern in item.signals:
        out.extend(c for c in cols if fnmatch.fnmatch(c, pattern) and c not in out)
    return out[:6]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if not isinstance(v, RunResult)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return None if value != value else round(value, 3)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


@dataclasses.dataclass
class ChecklistResult:
    """All verdicts of one checklist run."""

    target: str
    faults: list[str]
    outcomes: list[Outcome]
    elapsed_s: float

    @property
    def latency_split(self) -> dict[str, Any]:
        """The "other causes": reply time split into the LLM call and the
        backend, from the first experiment with text turns, so a slow LLM is
        told apart from a leak."""
        return next((o.latency_ms for o in self.outcomes if o.latency_ms), {})

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "faults": self.faults,
                "items": [o.as_dict() for o in self.outcomes], "latency_split": self.latency_split,
                "elapsed_s": round(self.elapsed_s, 2)}

    def table(self):
        """The verdict table as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(
            [{"id": o.id, "cause": o.title, "verdict": o.verdict, "answer": o.evidence.get("answer", "")}
             for o in self.outcomes]
        ).set_index("id")


async def run_checklist_async(
    target: str | Target = "reference",
    *,
    app_dir: Any = None,
    target_file: Any = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    items: Iterable[str] | str | None = None,
    progress: bool = True,
    **session_kwargs: Any,
) -> ChecklistResult:
    """Run every item's experiment on ``target`` configured with ``faults``.

    ``target`` is a :class:`Target` or a name :func:`~leaklab.targets.resolve_target`
    takes (with ``app_dir`` / ``target_file``); ``session_kwargs`` go to each
    experiment's :class:`LeakSession` (``step_timeout_s``...).
    """
    started = time.monotonic()
    chosen = get_items(items)
    # Resolved once, up front: a bad target, fault or option fails before any run.
    resolved = resolve_target(target, app_dir=app_dir, target_file=target_file, faults=faults, options=options)
    outcomes = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        tqdm.monitor_interval = 0
        bar = tqdm(total=len(chosen), desc="checklist", unit="item", leave=False)
    try:
        for item in chosen:
            outcomes.append(await run_experiment(item, resolved, **session_kwargs))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return ChecklistResult(resolved.name, sorted(resolved.faults), outcomes, time.monotonic() - started)


def run_checklist(*args: Any, **kwargs: Any) -> ChecklistResult:
    """Sync form of :func:`run_checklist_async` (owns its event loop)."""
    return asyncio.run(run_checklist_async(*args, **kwargs))


async def prove_fix_async(
    item: str = "C8",
    target: str = "reference",
    variants: Mapping[str, Sequence[str]] | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    cycles: int | None = None,
    **session_kwargs: Any,
) -> dict[str, Outcome]:
    """The same experiment on several fault sets, side by side.

    The default variants answer CHECKLIST.md's last question: the faulty
    backend, exactly the proposed fix, and the full fix — each with and
    without C9 (where ``close()`` is never reached).
    """
    variants = variants or {
        "faulty (C8)": ("C8",),
        "proposed fix": ("C8-proposed",),
        "full fix": (),
        "faulty + C9": ("C8", "C9"),
        "proposed fix + C9": ("C8-proposed", "C9"),
        "full fix + C9": ("C9",),
    }
    (chosen,) = get_items([item])
    return {name: await run_experiment(chosen, target, faults=list(faults), options=options, cycles=cycles,
                                       **session_kwargs)
            for name, faults in variants.items()}


def prove_fix(*args: Any, **kwargs: Any) -> dict[str, Outcome]:
    """Sync form of :func:`prove_fix_async`."""
    return asyncio.run(prove_fix_async(*args, **kwargs))
