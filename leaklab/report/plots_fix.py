"""Plots of checklist outcomes and fixes: the measurement that decided a
verdict (:func:`decisive`), the same experiment on several variants side by
side (:func:`fix_comparison`), a before/after comparison (:func:`comparison`).
Re-exported by :mod:`.plots`, where the notebooks find them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..metrics import Change, Kind
from ..metrics import name as metric_name
from .charts import Chart, Note, grows
from .plots_common import count_axis, cycles_axis, legend_below, metric_label, trend, unit_of
from .style import VERDICT_LINE_COLORS

__all__ = ["comparison", "decisive", "fix_comparison", "outcome_series"]


_RUN_STYLE: dict[str, dict[str, Any]] = {
    "main": {"color": "#c0392b", "marker": "o"},
    "control": {"color": "#1e8449", "marker": "s", "linestyle": "--"},
    "after_close": {"color": "#7d3c98", "marker": "D", "linestyle": "none", "markersize": 8},
    "timeline": {"color": "#c0392b", "drawstyle": "steps-post"},
    "expected": {"color": "#555555", "marker": ".", "linestyle": ":"},
}


def _run_label(series: Mapping[str, Any], controlled: bool = False) -> str:
    run, scenario = series.get("run"), series.get("scenario") or ""
    return {"main": f"{scenario} (the trigger)" if controlled else scenario,
            "control": f"{scenario} (the control, no trigger)",
            "after_close": "after closing every live client", "timeline": "after the last cycle",
            "expected": "sessions ended (each should close once)"}.get(run, str(run))


def decisive(outcome: Any) -> Chart | Note:
    """The measurement that decided a checklist verdict (the outcome's
    ``chart``, :func:`leaklab.checklist.charts.chart_data`): dose and
    response for a store grown to time the turns, the trigger beside its
    control, children after the close, else the signals per cycle — counts
    against the run's own baseline. A :class:`Note` when no signal changed.

    Args:
        outcome: a :class:`~leaklab.checklist.Outcome` or its ``as_dict()``.
    """
    d = outcome.as_dict() if hasattr(outcome, "as_dict") else dict(outcome)
    data = d.get("chart") or {}
    verdict = d.get("verdict", "")
    title = f"{d.get('id', '')} {d.get('title', '')}: {verdict}"
    color = VERDICT_LINE_COLORS.get(verdict, "#333")
    if data.get("kind") == "dose":
        return _dose(data, title, color)
    panels = data.get("panels") or []
    flat = data.get("flat") or {}
    flat_text = ", ".join(f"{metric_label(m, short=True)} {v:g}" for m, v in list(flat.items())[:3]) + (
        f" and {len(flat) - 3} more" if len(flat) > 3 else "")
    if not panels:
        why = (d.get("evidence") or {}).get("answer") or ""
        return Note(title, "no signal changed over the cycles" + (f" ({flat_text})" if flat_text else "")
                    + (f"; the evidence: {why}" if why and not flat_text else ""))
    n = len(panels)
    ncols = min(3, n)
    fig = Chart(figsize=(4.4 * ncols, 3.1 * math.ceil(n / ncols)))
    axes = fig.subplots(math.ceil(n / ncols), ncols, squeeze=False).ravel()
    parts, rising = [], []
    for ax, panel in zip(axes, panels, strict=False):
        metric = panel["metric"]
        unit = unit_of(metric)
        controlled = any(x["run"] == "control" for x in panel["series"])
        for series in panel["series"]:
            label = _run_label(series, controlled)
            xs = [x for x, y in zip(series["x"], series["y"]) if y is not None and x is not None]
            ys = [y for x, y in zip(series["x"], series["y"]) if y is not None and x is not None]
            if not ys:
                continue
            ax.plot(xs, ys, label=label, **_RUN_STYLE.get(series["run"], {}))
            if grows(ys) and series["run"] != "after_close":
                rising.append(label)
            if series["run"] != "after_close":
                parts.append(f"{metric_label(metric, short=True)}, {label}: {trend(ys)}")
            else:
                parts.append(f"{metric_label(metric, short=True)} {label}: {ys[-1]:+g}")
        ax.set_title(metric_label(metric, short=True) + (" after the last cycle" if panel["x"] == "t" else "")
                     + (", so far" if panel.get("cumulative") else ""), fontsize=9)
        ax.set_ylabel(f"change since the run's start ({unit})" if panel["relative"] else
                      "calls so far (count)" if panel.get("cumulative") else unit)
        if panel["x"] == "t":
            ax.set_xlabel("time after the last cycle (s)")
            ax.grid(True, alpha=0.3)
        else:
            cycles_axis(ax)
        if unit in ("count", "items", "rows"):
            count_axis(ax)
        ax.legend(fontsize=7, frameon=False)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(title, color=color)
    caption = ("Against each run's own start (cycle 0, before its first session): "
               if any(p["relative"] for p in panels) else "") + "; ".join(parts) + "."
    if flat_text:
        caption += f" Constant, not drawn: {flat_text}."
    return fig.say(caption, list(dict.fromkeys(rising)))


outcome_series = decisive
"""The former name of :func:`decisive`."""


def _dose(data: Mapping[str, Any], title: str, color: str) -> Chart:
    points = data["points"]
    unit = data.get("unit", "rows")
    metric = data.get("metric", "llm_ms")
    with_prompt = all(p.get("prompt_chars") is not None for p in points)
    fig = Chart(figsize=(9.0 if with_prompt else 5.5, 3.4))
    axes = fig.subplots(1, 2 if with_prompt else 1, squeeze=False).ravel()
    names = {"small": "first", "large": "grown", "back": "shrunk back"}
    sizes = [p["size"] for p in points]
    label = metric_label(metric, short=True)
    panels = [(axes[0], [p["ms"] for p in points], label, "ms")]
    if with_prompt:
        panels.append((axes[1], [p["prompt_chars"] for p in points], "prompt sent to the LLM", "characters"))
    for ax, ys, what, yunit in panels:
        ax.plot(sizes, ys, marker="o", color="#c0392b", label=what)
        for p, x, y in zip(points, sizes, ys, strict=False):
            ax.annotate(names.get(p["phase"], p["phase"]), (x, y), textcoords="offset points", fontsize=8,
                        xytext=(6, -12) if p["phase"] == "small" else (6, 4))
        ax.set_xlabel(f"history store size ({unit})")
        ax.set_ylabel(f"{what} ({yunit})")
        ax.set_title(f"{what} per turn, by store size", fontsize=9)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if len(set(ys)) == 1:
            # the same at every size is the measurement: the store is not read into it
            fig.allow_flat(ax, f"{what} the same at every store size")
    fig.suptitle(title, color=color)
    ms = [p["ms"] for p in points]
    follows = len(ms) == 3 and ms[1] > 1.5 * max(ms[0], ms[2])
    text = ", ".join(f"{p['ms']:.0f} ms at {p['size']} {unit} ({names.get(p['phase'], p['phase'])})" for p in points)
    caption = (f"The store grown and shrunk back, {label} per turn (median) at each size, in the order measured: "
               f"{text}: " + ("the time follows the store's size." if follows else "the time does not follow the store's size."))
    if with_prompt:
        prompts = [p["prompt_chars"] for p in points]
        caption += (" The prompt each LLM call carried: " + ", ".join(f"{c} chars" for c in prompts)
                    + (": the same at every size, the store is not read into it." if len(set(prompts)) == 1 else "."))
    rising = [label] if ms[1] > ms[0] else []
    if with_prompt and points[1]["prompt_chars"] > points[0]["prompt_chars"]:
        rising.append("prompt sent to the LLM")
    return fig.say(caption, rising)


def fix_comparison(outcomes: Mapping[str, Any], metric: str = metric_name(Kind.TYPE, "ServiceContext"), *, ncols: int = 3) -> Chart | Note:
    """The same experiment on several backends, side by side: one panel per
    variant (faulty, proposed fix, full fix...), same y scale, verdict in
    the title; a flat variant's panel is flat on purpose (it keeps nothing).

    Args:
        outcomes: variant name -> :class:`~leaklab.checklist.Outcome` (what
            :func:`~leaklab.compare.prove_fix_async` returns).
        metric: the signal to compare.
        ncols: panels per row.
    """
    items = list(outcomes.items())
    n = max(1, len(items))
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Chart(figsize=(4 * ncols, 2.8 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    top = 1.0
    parts, rising, varied = [], [], False
    for ax, (name, outcome) in zip(axes, items, strict=False):
        d = outcome.as_dict() if hasattr(outcome, "as_dict") else dict(outcome)
        values = [v for v in (d.get("series") or {}).get(metric, []) if v is not None]
        verdict = d.get("verdict", "")
        color = VERDICT_LINE_COLORS.get(verdict, "#333")
        if values:
            ax.plot(range(len(values)), values, marker="o", color=color, label=name)
            top = max(top, max(values))
            varied = varied or len(set(values)) > 1
            if grows(values):
                rising.append(name)
            else:
                fig.allow_flat(ax, f"{name} keeps nothing per cycle")
            parts.append(f"{name} ({verdict}): {trend(values)}")
        else:
            ax.text(0.5, 0.5, "flat: nothing kept\n(a constant is not charted)", ha="center", va="center",
                    transform=ax.transAxes, color="#1e8449")
            ax.plot([0], [0], alpha=0, label=name)
            fig.allow_flat(ax, f"{name}: the signal never changed")
            parts.append(f"{name} ({verdict}): never changed")
        ax.set_title(f"{name}\n{verdict}", fontsize=9, color=color)
        cycles_axis(ax)
        count_axis(ax)
        ax.set_ylabel(metric_label(metric))
    for ax in axes[len(items):]:
        ax.set_visible(False)
    axes[0].set_ylim(0, top * 1.15 + 0.5)
    fig.suptitle(f"{metric_label(metric, short=True)} per cycle, side by side")
    if not varied:
        return Note(f"{metric_label(metric, short=True)} per cycle", "no variant changed it: " + "; ".join(parts))
    return fig.say(f"The same experiment on each variant, one scale: {'; '.join(parts)}.", rising)


def comparison(result: Any, *, limit: int = 8) -> list[Chart]:
    """One figure per changed measure of a :class:`~leaklab.compare.Comparison`:
    its per-cycle values before and after, overlaid on one axis. A measure
    with no per-cycle series (a lifecycle count) or the same constant on both
    sides gets no figure (the table says it)."""
    figures: list[Chart] = []
    for row in result.rows:
        if len(figures) >= limit or row.change == Change.UNCHANGED:
            continue
        metrics: list[str]
        if row.kind == "item":
            sides = result.outcomes.get(row.unit, {})
            names = {m for o in sides.values() for m in (o.series or {})}
            metrics = sorted(names)
        else:
            metrics = [row.metric]
        for metric in metrics:
            series = result.series(row.unit, metric)
            values = [v for vs in series.values() for v in vs if v is not None]
            if not values or max(values) == min(values):
                continue
            fig = Chart(figsize=(6.5, 3.2))
            ax = fig.subplots()
            parts, rising = [], []
            for side, style in ((result.before.name, dict(color="#c0392b", marker="o")),
                                (result.after.name, dict(color="#1e8449", marker="s", linestyle="--"))):
                vs = series.get(side) or []
                if vs:
                    ax.plot(range(len(vs)), [v if v is not None else float("nan") for v in vs], label=side, **style)
                    parts.append(f"{side}: {trend(vs)}")
                    if grows(vs):
                        rising.append(side)
            cycles_axis(ax)
            ax.set_ylabel(metric_label(metric))
            ax.set_ylim(bottom=0)
            fig.suptitle(f"{row.unit}: {metric_label(metric, short=True)} per cycle, {row.change}", fontsize=10)
            legend_below(fig, ax)
            figures.append(fig.say(f"{metric_label(metric, short=True)} per cycle, before and after: "
                                   f"{'; '.join(parts)}.", rising))
            if len(figures) >= limit:
                break
    return figures
