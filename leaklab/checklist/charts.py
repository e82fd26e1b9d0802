"""What decided a verdict, as data: the chart an item's evidence needs and
what the cause costs per session. Pure functions of an item and its record
(no backend names: metrics come from the item's signals, read by role).

:func:`chart_data` picks the measurement the rule decided on:

* an item that grows a store to time the turns (``probe="grow_store"``):
  dose and response, the store's size against the turn's time (and the
  prompt's size where the fake LLM measured it), in the order measured;
* an item with a control run: the trigger's curve beside the control's;
* an item that closes clients itself (``probe="close_mcp"``): the children
  per cycle and the count after the close;
* a close method counted per session (``lifecycle:``): its calls so far
  against the sessions that ended so far;
* otherwise the signals per cycle.

Counts are drawn against the run's own baseline (its cycle 0, taken before
the first session): what earlier experiments in the same process left does
not show. A signal that stays constant gets no panel; its value is listed
in ``flat``.

:func:`cost` says what one session costs when the cause is present: bytes
retained, reply time added, processes, descriptors, files, entries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import metrics
from ..metrics import ItemVerdict, Kind, Verdict
from .items import Item, signal_columns

__all__ = ["chart_data", "cost", "headline"]

#: Metrics drawn as they are (a time), not against their baseline.
_ABSOLUTE_SUFFIX = "_ms"
_MAX_PANELS = 3


def _nums(values: Any) -> list[float | None]:
    out: list[float | None] = []
    for v in values or []:
        try:
            f = float(v)
        except (TypeError, ValueError):
            out.append(None)
            continue
        out.append(f if not math.isnan(f) else None)
    return out


def _varies(values: list[float | None]) -> bool:
    ys = [v for v in values if v is not None]
    return len(ys) > 1 and max(ys) != min(ys)


def _relative(values: list[float | None]) -> tuple[list[float | None], float | None]:
    base = next((v for v in values if v is not None), None)
    if base is None:
        return values, None
    return [None if v is None else v - base for v in values], base


def _panel(metric: str, runs: Mapping[str, Mapping[str, Any]], order: list[tuple[str, str]],
           x: str = "cycle") -> dict[str, Any] | None:
    relative = not metric.endswith(_ABSOLUTE_SUFFIX)
    series = []
    for run, scenario in order:
        curve = runs.get(run) or {}
        if metric not in curve:
            continue
        ys = _nums(curve[metric])
        if metrics.is_kind(metric, Kind.TASK):
            # a coroutine's column appears with its first task: none before it
            ys = [0.0 if v is None else v for v in ys]
        base = None
        if relative:
            ys, base = _relative(ys)
        xs = _nums(curve.get(x) or range(len(ys)))
        series.append({"run": run, "scenario": scenario, "x": xs, "y": ys, "baseline": base})
    if not series or not any(_varies(s["y"]) for s in series):
        return None
    return {"metric": metric, "x": x, "relative": relative, "series": series}


def _cumulative(values: Any) -> list[float | None]:
    total, out = 0.0, []
    for v in _nums(values):
        total += v or 0.0
        out.append(total)
    return out


def chart_data(item: Item, record: Mapping[str, Any]) -> dict[str, Any]:
    """The decisive chart of ``item``'s record (see the module doc):
    ``{"kind": "dose"|"cycles"|"none", "panels" | "points", "flat"}``."""
    facts = record.get("facts") or {}
    curves = record.get("curves") or {}
    if item.probe == "grow_store":
        phases = [p for p in ("small", "large", "back") if facts.get(f"latency_{p}_ms") is not None
                  and facts.get(f"size_{p}") is not None]
        if len(phases) >= 2:
            return {"kind": "dose", "unit": facts.get("unit", "rows"),
                    "metric": "llm_ms" if facts.get("latency_metric", "llm") == "llm" else "latency_end_ms",
                    "points": [{"phase": p, "size": facts[f"size_{p}"], "ms": facts[f"latency_{p}_ms"],
                                "prompt_chars": facts.get(f"prompt_{p}_chars")} for p in phases]}
    main = curves.get("main") or {}
    order = [("main", item.scenario)] + ([("control", item.control)] if item.control else [])
    panels: list[dict[str, Any]] = []
    flat: dict[str, Any] = {}
    for metric in [m for m in main if m != "cycle" and not metrics.is_kind(m, Kind.EXPECTED)]:
        parsed = metrics.parse(metric)
        expected = metrics.name(Kind.EXPECTED, parsed.subject)
        if parsed.kind is Kind.LIFECYCLE and expected in main:
            # calls of a close method against the sessions that ended, so far
            calls, ended = _cumulative(main[metric]), _cumulative(main[expected])
            if _varies(calls) or _varies(ended):
                xs = _nums(main.get("cycle") or range(len(calls)))
                panels.append({"metric": metric, "x": "cycle", "relative": False, "cumulative": True,
                               "series": [{"run": "main", "scenario": item.scenario, "x": xs, "y": calls, "baseline": None},
                                          {"run": "expected", "scenario": item.scenario, "x": xs, "y": ended,
                                           "baseline": None}]})
            continue
        panel = _panel(metric, curves, order)
        if panel is None:
            values = [v for v in _nums(main[metric]) if v is not None]
            if values:
                flat[metric] = values[-1]
            continue
        if item.probe == "close_mcp" and metric == "children" and facts.get("children_after_close") is not None:
            trigger = panel["series"][0]
            last_x = max((v for v in trigger["x"] if v is not None), default=0.0)
            base = trigger["baseline"] or 0.0
            panel["series"].append({"run": "after_close", "scenario": "", "x": [last_x + 1],
                                    "y": [float(facts["children_after_close"]) - base], "baseline": base})
        panels.append(panel)
    panels = panels[:_MAX_PANELS]
    timeline = curves.get("timeline") or {}
    if panels and panels[0]["metric"] in timeline:
        metric = panels[0]["metric"]
        first = next((v for v in _nums(main[metric]) if v is not None), None)
        ys = _nums(timeline[metric])
        if _varies(ys):
            rel = [None if v is None or first is None or not panels[0]["relative"] else v - first for v in ys] \
                if panels[0]["relative"] else ys
            panels.append({"metric": metric, "x": "t", "relative": panels[0]["relative"],
                           "series": [{"run": "timeline", "scenario": item.scenario, "x": _nums(timeline.get("t")),
                                       "y": rel, "baseline": first}]})
    return {"kind": "cycles" if panels else "none", "panels": panels, "flat": flat}


def headline(data: Mapping[str, Any], per_cycle: Mapping[str, Any] | None = None) -> str:
    """The decisive measurement in a few words, from :func:`chart_data`."""
    if data.get("kind") == "dose":
        pts = data["points"]
        parts = ", ".join(f"{p['ms']:.0f} ms at {p['size']}" for p in pts)
        return f"turn time vs store size ({data.get('unit')}): {parts}"
    panels = data.get("panels") or []
    if not panels:
        flat = data.get("flat") or {}
        return ("every signal stayed flat (" + ", ".join(f"{m} {v:g}" for m, v in list(flat.items())[:3]) + ")"
                if flat else "nothing measured")
    p = panels[0]
    parts = []
    for s in p["series"]:
        ys = [v for v in s["y"] if v is not None]
        if not ys or s["run"] == "timeline":
            continue
        rise = ys[-1] - ys[0]
        name = {"main": s["scenario"], "control": f"control {s['scenario']}", "after_close": "after close",
                "expected": "sessions ended"}.get(s["run"], s["run"])
        parts.append(f"{name} {'+' if rise >= 0 else ''}{rise:g}" if s["run"] != "after_close"
                     else f"{name} {ys[-1]:+g}")
    if p.get("cumulative"):
        return f"{p['metric']} so far: " + ", ".join(parts)
    return f"{p['metric']}: " + ", ".join(parts) + (" (vs the run's start)" if p.get("relative") else "")


def _per_cycle(v: Mapping[str, Any] | None) -> float | None:
    if v and v.get("verdict") in (Verdict.LEAK, Verdict.TRANSIENT) and (v.get("per_cycle") or 0) > 0:
        return float(v["per_cycle"])
    return None


def cost(item: Item, record: Mapping[str, Any], verdict: str) -> dict[str, Any]:
    """What one session costs while the cause is present (confirmed or
    transient verdicts; ``{}`` otherwise), from the item's own signals.
    Keys present only where measured:

    * ``retained_bytes``: bytes the survivors retain after the run, over the
      sessions run (where the item runs the retention analysis);
    * ``reply_ms``: reply time added per session (the LLM or end-to-end
      time's slope, or, for a store read per turn, the time per stored row
      times the rows a session adds: the dose and response, not the main
      run's slope, which other causes present at once also move);
    * ``processes``, ``fds``, ``files``: per session;
    * ``objects``: watched type -> instances per session; ``entries``:
      container path -> entries per session; ``tasks``: coroutine ->
      pending tasks per session; ``skipped_calls``: close method -> calls
      that did not happen per session.
    """
    if verdict not in (ItemVerdict.CONFIRMED, ItemVerdict.TRANSIENT):
        return {}
    runs = record.get("runs") or {}
    main = runs.get("main") or {}
    facts = record.get("facts") or {}
    n = int(main.get("judged_cycles") or main.get("cycles") or 0)
    resources = main.get("resources") or {}
    # Only what this item's signals name: with several causes present at
    # once, another cause's growth in the same run is not this one's cost.
    names = ([metrics.name(Kind.TYPE, t) for t in main.get("types") or {}] + list(resources)
             + [metrics.name(Kind.CONTAINER, str(c.get("path"))) for c in main.get("containers") or []]
             + ["llm_ms", "latency_end_ms"]
             + [metrics.name(Kind.TASK, t) for t in (main.get("tasks") or {}).get("by_coroutine") or {}]
             + [metrics.name(Kind.LIFECYCLE, label) for label in main.get("lifecycle") or {}])
    own = set(signal_columns(item, record.get("roles") or {}, names, limit=10_000))
    out: dict[str, Any] = {}
    groups = (facts.get("retention") or {}).get("groups") or []
    retained = max((g.get("retained_bytes") or 0 for g in groups), default=0)
    if retained and n:
        out["retained_bytes"] = round(retained / n)
    latency = main.get("latency_ms") or {}
    if "latency_end_ms" in own and latency.get("verdict") == Verdict.SLOWS and (latency.get("per_cycle") or 0) > 0:
        out["reply_ms"] = round(float(latency["per_cycle"]), 1)
    llm = latency.get("llm") or {}
    if "llm_ms" in own and llm.get("verdict") == Verdict.SLOWS and (llm.get("per_cycle") or 0) > out.get("reply_ms", 0):
        out["reply_ms"] = round(float(llm["per_cycle"]), 1)
    if item.probe == "grow_store":
        # the time one stored row costs each turn (the dose and response),
        # times the rows a session adds (growth by design: a history grows);
        # the main run's own slope would mix in every other cause present
        out.pop("reply_ms", None)
        a, b = facts.get("latency_small_ms"), facts.get("latency_large_ms")
        lo, hi = facts.get("size_small"), facts.get("size_large")
        added = next((float(v["per_cycle"]) for k, v in resources.items() if k in own
                      and k.endswith(("_rows", "_files")) and (v.get("per_cycle") or 0) > 0), None)
        if None not in (a, b, lo, hi, added) and hi > lo and b > a:
            out["reply_ms"] = round((b - a) / (hi - lo) * added, 1)
    children = _per_cycle(resources.get("children")) if "children" in own else None
    after, base = facts.get("children_after_close"), facts.get("children_baseline")
    if "children" in own and after is not None and base is not None and after > base and n:
        children = max(children or 0.0, (after - base) / n)
    if children:
        out["processes"] = round(children, 2)
    if "fds" in own and (fds := _per_cycle(resources.get("fds"))) is not None:
        out["fds"] = round(fds, 2)
    files = next((_per_cycle(v) for k, v in resources.items() if k in own and k.endswith("_files") and _per_cycle(v)),
                 None)
    if files is not None and item.probe != "grow_store":
        out["files"] = round(files, 2)
    objects = {t: round(p, 2) for t, v in (main.get("types") or {}).items()
               if metrics.name(Kind.TYPE, t) in own and (p := _per_cycle(v))}
    if objects:
        out["objects"] = objects
    entries = {c["path"]: round(p, 2) for c in main.get("containers") or []
               if metrics.name(Kind.CONTAINER, c["path"]) in own and (p := _per_cycle(c))}
    if entries:
        out["entries"] = dict(sorted(entries.items(), key=lambda kv: -kv[1])[:3])
    tasks = {name: round(p, 2) for name, v in ((main.get("tasks") or {}).get("by_coroutine") or {}).items()
             if metrics.name(Kind.TASK, name) in own and (p := _per_cycle(v))}
    if tasks:
        out["tasks"] = tasks
    skipped = {}
    for label, v in (main.get("lifecycle") or {}).items():
        if metrics.name(Kind.LIFECYCLE, label) in own and n and (v.get("expected") or 0) > (v.get("calls") or 0):
            skipped[label] = round((v["expected"] - (v.get("calls") or 0)) / n, 2)
    if skipped:
        out["skipped_calls"] = skipped
    return out
