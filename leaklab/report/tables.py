"""Tables and cards for notebooks and the HTML report, from data.

DataFrames for numbers; :class:`Card` for a few lines of prose (a checklist
item's hypothesis, an outcome's verdict). Every string that came from the
measured program (labels, answers, reprs) is HTML-escaped here, and run
through :func:`leaklab.retention.redact` where it could carry a secret.
Verdicts are coloured by :data:`leaklab.report.style.VERDICT_COLORS`
(re-exported here).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..metrics import Kind, Verdict
from ..metrics import name as metric_name
from ..retention.safe import redact
from .style import VERDICT_COLORS

__all__ = [
    "DATA_MIME",
    "VERDICT_COLORS",
    "Card",
    "WithData",
    "allocations",
    "checklist",
    "comparison",
    "comparison_chains",
    "first_screen",
    "fix",
    "fix_lines",
    "item_card",
    "left_running",
    "memory",
    "outcome_card",
    "styled_verdicts",
    "type_growth",
    "verdict_frame",
    "verdicts",
]

DATA_MIME = "application/vnd.leaklab.data+json"
"""The output type that carries a table's data, or a card's title and anchor
(ignored by renderers): the report's first screen, its verdicts and its
pages are read from it."""


class WithData:
    """A table (a pandas Styler) shown as HTML, whose output also carries
    its data as JSON (:data:`DATA_MIME`, ``{"kind": ..., ...}``). Anything
    else is the table's own (``.data``, ``.to_html()``...)."""

    def __init__(self, shown: Any, kind: str, data: Mapping[str, Any]) -> None:
        self.shown, self.kind, self.payload = shown, kind, {"kind": kind, **data}

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        import json

        shown = self.shown
        text = shown._repr_html_() if hasattr(shown, "_repr_html_") else html.escape(str(shown))
        return {"text/html": text, DATA_MIME: json.loads(json.dumps(self.payload, default=str)),
                "text/plain": f"<{self.kind} table>"}

    def __getattr__(self, name: str) -> Any:
        if name in ("shown", "kind", "payload"):
            raise AttributeError(name)
        return getattr(self.shown, name)


@dataclasses.dataclass(frozen=True)
class Card:
    """A few escaped lines that Jupyter shows as HTML (and text elsewhere).

    Attributes:
        title: the heading (plain text).
        rows: ``(label, text)`` pairs (plain text).
        color: background of the title, by verdict.
        anchor: the card's ``id`` (the report links to it).
    """

    title: str
    rows: tuple[tuple[str, str], ...] = ()
    color: str = "#eef2fb"
    anchor: str = ""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # the data says where a card starts a page of the report (an anchored one)
        return {"text/html": self._repr_html_(), "text/plain": repr(self),
                DATA_MIME: {"kind": "card", "title": self.title, "anchor": self.anchor}}

    def _repr_html_(self) -> str:
        esc = html.escape
        body = "".join(
            f"<tr><th style='text-align:left;vertical-align:top;padding-right:1em'>{esc(k)}</th>"
            f"<td style='text-align:left'>{esc(v)}</td></tr>"
            for k, v in self.rows
        )
        return (
            "<div class='leaklab-card'" + (f" id='{esc(self.anchor)}'" if self.anchor else "")
            + " style='border:1px solid #c8cdd6;border-radius:6px;margin:0.6em 0;max-width:60em'>"
            f"<div style='background:{esc(self.color)};padding:0.35em 0.7em;font-weight:bold'>{esc(self.title)}</div>"
            f"<table style='margin:0.3em 0.7em'>{body}</table></div>"
        )

    def __repr__(self) -> str:
        return "\n".join([self.title] + [f"  {k}: {v}" for k, v in self.rows])


def _text(value: Any) -> str:
    return redact(str(value)) if value is not None else ""


def verdict_frame(summary: Mapping[str, Any], *, include_none: bool = False) -> pd.DataFrame:
    """A run's verdicts (``RunResult.summary()``) as one DataFrame.

    Args:
        summary: the summary dict (``leaklab run --json`` prints the same).
        include_none: keep metrics with verdict ``none`` too.

    Returns:
        Rows ``metric, start, end, per_cycle, verdict, lifetime_s``; flagged
        metrics first. A reply-time row (``slows``/``none``), lifecycle
        rows (``calls of expected``) and survivor rows (instances the cycles
        created still alive after the timeline, ``N still alive``) are added.
    """
    rows: list[dict[str, Any]] = []

    def add(metric: str, v: Mapping[str, Any]) -> None:
        if include_none or v.get("verdict") not in (None, Verdict.NONE):
            rows.append({"metric": metric, "start": v.get("start"), "end": v.get("end"),
                         "per_cycle": v.get("per_cycle"), "verdict": v.get("verdict"),
                         "lifetime_s": v.get("lifetime_s")})

    for name, v in (summary.get("types") or {}).items():
        add(metric_name(Kind.TYPE, name), v)
    tasks = dict(summary.get("tasks") or {})
    by_coroutine = tasks.pop("by_coroutine", {}) or {}
    if tasks:
        add("tasks", tasks)
    for name, v in by_coroutine.items():
        add(metric_name(Kind.TASK, name), v)
    for name, v in (summary.get("resources") or {}).items():
        add(name, v)
    for c in summary.get("containers") or []:
        add(metric_name(Kind.CONTAINER, c["path"]), c)
    lat = summary.get("latency_ms") or {}
    for key, label in (("", "latency_end_ms"), ("llm", "llm_ms"), ("backend", "backend_ms")):
        v = lat.get(key) if key else lat
        if v and v.get("first") is not None and (include_none or v.get("verdict") != Verdict.NONE):
            rows.append({"metric": label, "start": v.get("first"), "end": v.get("last"),
                         "per_cycle": v.get("per_cycle"), "verdict": v.get("verdict"), "lifetime_s": None})
    for name, v in (summary.get("lifecycle") or {}).items():
        calls, expected = v.get("calls"), v.get("expected")
        if expected and (include_none or (calls or 0) < expected):
            rows.append({"metric": metric_name(Kind.LIFECYCLE, name), "start": None, "end": calls, "per_cycle": None,
                         "verdict": f"{calls} calls of {expected}", "lifetime_s": None})
    survivors = summary.get("survivors") or {}
    for name, n in (survivors.get("alive") or {}).items():
        still_open = (survivors.get("open") or {}).get(name, 0)
        if n > still_open:  # created by the cycles, alive after the timeline, whatever the slope
            # a row label, not a metric: no census column is named so
            rows.append({"metric": f"survivors:{name}", "start": None, "end": n, "per_cycle": None,
                         "verdict": f"{n - still_open} still alive" + (f" (+{still_open} open)" if still_open else ""),
                         "lifetime_s": None})
    order = {Verdict.LEAK: 0, Verdict.SLOWS: 1, Verdict.TRANSIENT: 2}
    frame = pd.DataFrame(rows, columns=["metric", "start", "end", "per_cycle", "verdict", "lifetime_s"])
    frame["metric"] = frame["metric"].map(_text)
    frame = frame.sort_values("verdict", key=lambda s: s.map(lambda v: order.get(v, 3)), kind="stable")
    frame["lifetime_s"] = frame["lifetime_s"].astype("float64")
    return frame.set_index("metric").round(2)


def verdicts(summary: Mapping[str, Any], *, include_none: bool = False) -> Any:
    """:func:`verdict_frame` for display: verdicts coloured, blanks for
    missing values, escaped."""
    keep = ("types", "tasks", "resources", "containers", "latency_ms", "memory", "lifecycle", "time", "scenario", "cycles",
            "judged_cycles", "target", "faults", "other")
    return WithData(styled_verdicts(verdict_frame(summary, include_none=include_none)), "run",
                    {"summary": {k: summary.get(k) for k in keep if k in summary}})


def styled_verdicts(frame: pd.DataFrame, column: str = "verdict") -> Any:
    """A pandas Styler of ``frame``: the index as a first column, the verdict
    column coloured, every cell HTML-escaped, missing values blank."""

    def color(v: Any) -> str:
        c = VERDICT_COLORS.get(str(v))
        return f"background-color: {c}" if c else ""

    flat = frame.reset_index() if frame.index.name else frame
    styler = flat.style.format(escape="html", precision=2, na_rep="").hide(axis="index")
    if column in flat.columns:
        styler = styler.map(color, subset=[column])
    return styler.set_table_attributes('class="leaklab-table"')


def checklist(outcomes: Iterable[Any], extra: Iterable[Mapping[str, Any]] = ()) -> Any:
    """The verdict table of checklist outcomes (``id, cause, verdict,
    answer``), verdicts coloured, escaped; its output carries the outcomes
    (the report's first screen reads them).

    ``extra``: rows in the same form for what no item covers (the hunt's
    :func:`~leaklab.hunt.checklist_rows`), after the items."""
    outcomes, extra = list(outcomes), list(extra)
    rows = []
    for o in [*outcomes, *extra]:
        d = o.as_dict() if hasattr(o, "as_dict") else dict(o)
        rows.append({"id": d["id"], "cause": d["title"], "verdict": d["verdict"],
                     "answer": _text((d.get("evidence") or {}).get("answer", ""))})
    frame = pd.DataFrame(rows, columns=["id", "cause", "verdict", "answer"]).set_index("id")
    items = [o.as_dict() if hasattr(o, "as_dict") else dict(o) for o in outcomes]
    return WithData(styled_verdicts(frame), "checklist", {"items": items, "extra": [dict(r) for r in extra]})


def fix(outcomes: Mapping[str, Any]) -> Any:
    """Variants side by side (``prove_fix_async``'s result): verdict and answer."""
    rows = []
    for name, o in outcomes.items():
        d = o.as_dict() if hasattr(o, "as_dict") else dict(o)
        rows.append({"backend": name, "verdict": d["verdict"],
                     "answer": _text((d.get("evidence") or {}).get("answer", ""))})
    variants = {name: (o.as_dict() if hasattr(o, "as_dict") else dict(o)) for name, o in outcomes.items()}
    return WithData(styled_verdicts(pd.DataFrame(rows, columns=["backend", "verdict", "answer"]).set_index("backend")),
                    "fix", {"variants": variants})


def left_running(orphans: Mapping[str, Any] | None) -> Any:
    """What :meth:`~leaklab.session.LeakSession.stop` found the backend left
    running (child processes, threads, listening ports), as a table: each
    count with what it means, instead of a raw dict."""
    meaning = {
        "children": "child processes still running (MCP servers whose close() never ran or did not reap them)",
        "threads": "threads the backend started that are still alive",
        "listening_ports": "ports still listening on 127.0.0.1",
    }
    rows = [{"left running": name.replace("_", " "), "count": n, "verdict": Verdict.LEAK if n else Verdict.NONE,
             "what it is": meaning.get(name, "")} for name, n in (orphans or {}).items()]
    return styled_verdicts(pd.DataFrame(rows, columns=["left running", "count", "verdict", "what it is"]))


def memory(summary: Mapping[str, Any]) -> Any:
    """A run's memory verdicts (``summary["memory"]``): cyclic garbage per
    cycle and why RSS grew, each with its evidence, escaped."""
    mem = summary.get("memory") or {}
    rows = []
    for part, label in (("cyclic", "freed only by a gc pass"), ("rss", "RSS not in live objects")):
        v = mem.get(part) or {}
        rows.append({"measure": label, "verdict": v.get("verdict", "not measured"), "evidence": _text(v.get("note", ""))})
    return styled_verdicts(pd.DataFrame(rows, columns=["measure", "verdict", "evidence"]))


def comparison(result: Any) -> Any:
    """The before/after table of a :class:`~leaklab.compare.Comparison` (or
    its ``as_dict()``): one row per item and per metric that grows on either
    side, the change coloured, escaped. Items first, then scenarios."""
    d = result.as_dict() if hasattr(result, "as_dict") else dict(result)
    before = d["before"].get("source") or "before"
    after = d["after"].get("source") or "after"
    rows = [{"unit": r["unit"], "measure": r["metric"], f"before: {_text(before)}": r["before"],
             f"after: {_text(after)}": r["after"], "change": r["change"], "detail": _text(r.get("detail", "")),
             "your change": _text(r.get("coverage", "").replace("**", ""))}
            for r in d["rows"]]
    columns = ["unit", "measure", f"before: {_text(before)}", f"after: {_text(after)}", "change", "detail"]
    if any(r.get("coverage") for r in d["rows"]):  # which hunks of the change ran, per unit
        columns.append("your change")
    return WithData(styled_verdicts(pd.DataFrame(rows, columns=columns), column="change"), "comparison",
                    {"before": d["before"], "after": d["after"], "rows": d["rows"]})


def fix_lines(result: Any) -> Any:
    """Did your fix run? One row per unit and hunk of the change: where it
    is, its function, ``ran N×`` or ``never ran`` and why."""
    from ..compare.fixlines import hunk_status

    d = result.as_dict() if hasattr(result, "as_dict") else dict(result)
    rows = [{"unit": unit, "hunk": h["id"], "function": h["function"],
             "ran": _text(hunk_status(h, cov.get("cycles")).replace("**", ""))}
            for unit, cov in (d.get("coverage") or {}).items() for h in cov.get("hunks") or []]
    if not rows:
        hunks = ((d.get("change") or {}).get("hunks")) or []
        rows.append({"unit": "-", "hunk": "-", "function": "-",
                     "ran": "no code change between the sides" if d.get("change") and not hunks else "not traced"})
    return styled_verdicts(pd.DataFrame(rows, columns=["unit", "hunk", "function", "ran"]), column="")


def comparison_chains(result: Any) -> Any:
    """What keeps the survivors alive on each side, per unit (one chain a
    line; empty where nothing survived)."""
    d = result.as_dict() if hasattr(result, "as_dict") else dict(result)
    rows = []
    for unit, sides in (d.get("chains") or {}).items():
        for side, lines in sides.items():
            for line in lines[:4]:
                rows.append({"unit": unit, "side": side, "held by": _text(line)})
    if not rows:
        rows.append({"unit": "-", "side": "-", "held by": "no survivor on either side"})
    return styled_verdicts(pd.DataFrame(rows, columns=["unit", "side", "held by"]), column="")


def item_card(item: Any) -> Card:
    """A checklist item before its experiment: where, hypothesis, question, trigger."""
    return Card(
        f"{item.id} · {item.title}",
        (("where (users' code)", item.where), ("hypothesis", item.hypothesis), ("question", item.question),
         ("experiment", f"scenario {item.scenario}, {item.cycles} cycles"),
         ("signals", ", ".join(item.signals) or "-")),
        anchor=f"item-{item.id}",
    )


def outcome_card(outcome: Any) -> Card:
    """A checklist outcome: the verdict, the answer, the evidence's key numbers."""
    d = outcome.as_dict() if hasattr(outcome, "as_dict") else dict(outcome)
    evidence = dict(d.get("evidence") or {})
    rows: list[tuple[str, str]] = [("answer", _text(evidence.pop("answer", "")))]
    held = evidence.pop("held_by", None)
    if held:
        rows.append(("held by", " → ".join(
            _text(e.get("label", "")) + (f" ({_text(e['where'])})" if e.get("where") and str(e["where"]) not in str(
                e.get("label", "")) else "") for e in held)))
    for key in ("root_kind", "deep_bytes", "retained_bytes", "step_errors"):
        if evidence.get(key) not in (None, "", []):
            rows.append((key, _text(evidence[key])))
    rows.append(("time", f"{d.get('elapsed_s', 0):.1f} s"))
    return Card(f"{d.get('id', '')}: {d.get('verdict', '')}", tuple(rows), VERDICT_COLORS.get(d.get("verdict", ""), "#eef2fb"))


def type_growth(diff: Any) -> pd.DataFrame:
    """A pympler summary diff (:func:`leaklab.retention.summary_diff`) as a
    table: objects gained per type and KiB."""
    rows = diff.as_dict() if hasattr(diff, "as_dict") else list(diff)
    frame = pd.DataFrame(rows, columns=["type", "count", "bytes"])
    frame["type"] = frame["type"].map(_text)
    frame["KiB"] = (frame.pop("bytes") / 1024).round(1)
    return frame.rename(columns={"count": "objects gained"}).set_index("type")


def objgraph_growth(rows: Sequence[tuple[str, int, int]]) -> pd.DataFrame:
    """``objgraph.growth()``'s rows (type, count now, increase) as a table."""
    frame = pd.DataFrame([{"type": _text(t), "count": n, "increase": d} for t, n, d in rows],
                         columns=["type", "count", "increase"])
    return frame.set_index("type")


def allocations(growth: Sequence[Any], *, frames: int = 3) -> pd.DataFrame:
    """tracemalloc growth (:func:`leaklab.retention.tracemalloc_diff`) as a
    table: where it was allocated, KiB and blocks gained, the calling frames."""
    rows = []
    for g in growth:
        d = g.as_dict() if hasattr(g, "as_dict") else dict(g)
        callers = list(d.get("traceback") or [])[-frames - 1:-1]
        rows.append({"allocated at": _text(d["where"]), "KiB gained": round(d["size_diff"] / 1024, 1),
                     "blocks gained": d["count_diff"], "called from": _text(" ← ".join(reversed(callers)))})
    return pd.DataFrame(rows, columns=["allocated at", "KiB gained", "blocks gained", "called from"]).set_index("allocated at")


def first_screen(outcomes: Iterable[Any], extra: Iterable[Mapping[str, Any]] = (), *, target: str = "",
                 symptom: Mapping[str, Any] | None = None, fix: Mapping[str, Any] | None = None) -> Any:
    """The report's first screen from checklist outcomes (and the hunt's
    extra rows): :func:`leaklab.report.story.first_screen`."""
    from .story import first_screen as screen

    items = [o.as_dict() if hasattr(o, "as_dict") else dict(o) for o in outcomes]
    return screen({"items": items, "extra": [dict(r) for r in extra]}, target=str(target), symptom=symptom, fix=fix)
