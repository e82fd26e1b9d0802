"""Plots for notebooks and the HTML report. Each function returns a
:class:`~leaklab.report.charts.Chart` (a :class:`matplotlib.figure.Figure`
with a caption) with labelled axes and units, or a
:class:`~leaklab.report.charts.Note` where every series would be one
constant: a chart of a constant says nothing, a sentence says the value.
Every caption is written from the data drawn, and every chart passes
:func:`~leaklab.report.charts.chart_problems`.

Figures are made with ``Chart()`` (a ``Figure``), not ``pyplot``: no global figure
registry keeps them (and their data) alive after a cell, and nothing is drawn
until someone displays or saves them. In Jupyter, ``%matplotlib inline``
shows a returned figure.

Inputs are data, never live objects: a census (records, a DataFrame from
:func:`leaklab.analysis.census_frame`, or a ``RunResult``), a timeline, a
checklist :class:`~leaklab.checklist.Outcome`, a retention report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.ticker import MaxNLocator

from .._platform import FDS_LABEL
from ..analysis import census_frame, split_latency, timeline_frame
from .charts import Chart, Note, grows

__all__ = [
    "counts_per_cycle",
    "decisive",
    "fix_comparison",
    "hunt_candidates",
    "comparison",
    "latency_split",
    "metric_label",
    "metric_panels",
    "outcome_series",
    "overview",
    "retention_sizes",
    "retention_timeline",
]

_CYCLE = "cycle (one session opened and closed)"
_VERDICT_COLORS = {
    "confirmed": "#c0392b", "leak": "#c0392b", "transient": "#d68910", "ruled_out": "#1e8449",
    "none": "#1e8449", "normal": "#2e86c1", "not_applicable": "#7f8c8d", "inconclusive": "#b7950b",
}

_UNITS: dict[str, tuple[str, str]] = {
    "rss_mb": ("resident memory", "MiB"),
    "tracemalloc_mb": ("Python allocations (tracemalloc)", "MiB"),
    "fds": (FDS_LABEL, "count"),
    "threads": ("threads", "count"),
    "children": ("child processes", "count"),
    "gc_objects": ("gc-tracked objects since start", "count"),
    "tasks": ("pending asyncio tasks", "count"),
    "cache_files": ("files in the audio cache", "count"),
    "cache_bytes": ("audio cache size", "bytes"),
    "db_rows": ("history rows", "rows"),
    "db_bytes": ("history database size", "bytes"),
    "latency_first_ms": ("time to first audio", "ms"),
    "latency_end_ms": ("reply time, end to end", "ms"),
    "llm_ms": ("time in the LLM call", "ms"),
    "backend_ms": ("backend's own time", "ms"),
}


def metric_label(metric: str, *, short: bool = False) -> str:
    """A census column as an axis label with its unit: ``rss_mb`` ->
    ``"resident memory (MiB)"``, ``type:ServiceContext`` -> ``"live
    ServiceContext (count)"``."""
    name, _, rest = metric.partition(":")
    if rest:
        what, unit = {
            "type": (f"live {rest}", "count"),
            "task": (f"pending tasks {rest}", "count"),
            "container": (f"len({rest})", "items"),
            "lifecycle": (f"calls to {rest}", "per cycle"),
            "expected": (f"sessions ended ({rest})", "per cycle"),
        }.get(name, (metric, "value"))
    else:
        what, unit = _UNITS.get(metric, (metric, "value"))
    if short:
        return what
    return f"{what} ({unit})"


def _census(data: Any) -> pd.DataFrame:
    records = getattr(data, "records", None)
    return census_frame(records if records is not None else data)


def _timeline(data: Any) -> pd.DataFrame:
    samples = getattr(data, "timeline", None)
    return timeline_frame(samples if samples is not None else data)


def _no_data(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} measured", ha="center", va="center", transform=ax.transAxes, color="#777")


def _cycles_axis(ax: Any) -> None:
    ax.set_xlabel(_CYCLE)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)


def _count_axis(ax: Any) -> None:
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _legend(fig: Chart, ax: Any) -> None:
    # Outside the axes, under the x label: a legend never hides a line or a bar.
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(handles)), fontsize=8, frameon=False)


def _default_counts(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("type:")] + [c for c in ("tasks",) if c in frame.columns]


def _num(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:.3g}"


def _trend(values: Sequence[Any], unit: str = "") -> str:
    ys = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not ys:
        return "not measured"
    if max(ys) == min(ys):
        return f"flat at {_num(ys[0])}{unit}"
    return f"{_num(ys[0])} -> {_num(ys[-1])}{unit}" + (f" (peak {_num(max(ys))})" if max(ys) > max(ys[0], ys[-1]) else "")


def _flat_note(title: str, frame: pd.DataFrame, metrics: Sequence[str]) -> Note:
    values = ", ".join(f"{metric_label(m, short=True)} {frame[m].dropna().iloc[-1]:g}" for m in metrics
                       if m in frame.columns and not frame[m].dropna().empty)
    return Note(title, f"nothing changed from cycle to cycle ({values or 'no values'}): no chart")


def _varying(frame: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    return [m for m in metrics if m in frame.columns and frame[m].dropna().nunique() > 1]


def counts_per_cycle(census: Any, metrics: Sequence[str] | None = None, *, title: str | None = None) -> Chart | Note:
    """Counts per cycle on one axis (live watched instances and pending tasks
    by default): a leak is a staircase, a correct backend a flat line.

    Args:
        census: census records, a census frame or a ``RunResult``.
        metrics: census columns to draw (counts); default every ``type:``
            column and ``tasks``.
        title: figure title.

    Returns:
        The chart, or a :class:`Note` when every count stayed the same.
    """
    frame = _census(census)
    chosen = [m for m in (metrics or _default_counts(frame)) if m in frame.columns]
    title = title or "what each cycle leaves alive"
    if chosen and not _varying(frame, chosen):
        return _flat_note(title, frame, chosen)
    fig = Chart(figsize=(7.5, 4))
    ax = fig.subplots()
    for m in chosen:
        ax.plot(frame.index, frame[m], marker="o", label=metric_label(m, short=True))
    if not chosen:
        _no_data(ax, "counts")
    _cycles_axis(ax)
    _count_axis(ax)
    ax.set_ylabel("live after the cycle (count)")
    ax.set_ylim(bottom=0)
    fig.suptitle(title)
    _legend(fig, ax)
    rising = [metric_label(m, short=True) for m in chosen if grows(frame[m].dropna().tolist())]
    parts = "; ".join(f"{metric_label(m, short=True)} {_trend(frame[m].dropna().tolist())}" for m in chosen)
    return fig.say(f"Counted after each cycle (cycle 0: before the first session): {parts}. "
                   + ("A line that climbs one step per cycle is kept per session." if rising else ""), rising)


def metric_panels(data: Any, metrics: Sequence[str], *, title: str | None = None, x: str = "cycle",
                  ncols: int = 2) -> Chart | Note:
    """One panel per metric that changes, each with its own unit; the ones
    that stay constant are named in the caption instead.

    Args:
        data: a census (``x="cycle"``) or a timeline (``x="t"``).
        metrics: columns; a missing or constant one gets no panel (the
            caption names it).
        title: figure title.
        x: ``"cycle"`` or ``"t"`` (seconds after the last cycle).
        ncols: panels per row.
    """
    frame = _census(data) if x == "cycle" else _timeline(data)
    present = [m for m in metrics if m in frame.columns and not frame[m].dropna().empty]
    flat = [m for m in present if frame[m].dropna().nunique() <= 1]
    shown = [m for m in present if m not in flat]
    missing = [metric_label(m, short=True) for m in metrics if m not in present]
    if not shown:
        if present:
            return _flat_note(title or "per cycle", frame, present)
        return Note(title or "per cycle", f"not measured: {', '.join(missing)}")
    n = max(1, len(shown))
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Chart(figsize=(4.2 * ncols, 2.9 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, m in zip(axes, shown, strict=False):
        series = frame[m].dropna() if m in frame.columns else pd.Series(dtype="float64")
        if series.empty:
            _no_data(ax, metric_label(m, short=True))
        else:
            ax.plot(series.index, series.to_numpy(), marker="o" if x == "cycle" else None, color="#2e5c8a",
                    label=metric_label(m, short=True))
        ax.set_title(metric_label(m, short=True), fontsize=9)
        unit = metric_label(m).rpartition(" (")[2].rstrip(")")
        ax.set_ylabel(unit)
        if unit in ("count", "items", "rows"):
            _count_axis(ax)
            if not series.empty:
                ax.set_ylim(bottom=0)
        if x == "cycle":
            _cycles_axis(ax)
        else:
            ax.set_xlabel("time after the last cycle (s)")
            ax.grid(True, alpha=0.3)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    drawn = [m for m in shown if m in present]
    rising = [metric_label(m, short=True) for m in drawn if grows(frame[m].dropna().tolist())]
    where = "per cycle" if x == "cycle" else "after the last cycle"
    caption = (f"{where.capitalize()}: " + "; ".join(f"{metric_label(m, short=True)} {_trend(frame[m].dropna().tolist())}"
                                                    for m in drawn) + ".")
    if flat:
        caption += " Not drawn, constant: " + ", ".join(
            f"{metric_label(m, short=True)} {frame[m].dropna().iloc[-1]:g}" for m in flat) + "."
    if missing:
        caption += " Not measured: " + ", ".join(missing) + "."
    return fig.say(caption, rising)


def overview(census: Any, *, title: str | None = None) -> Chart | Note:
    """The symptom per cycle: live sessions, pending tasks, resident memory
    and reply time (four panels; a constant one is named, not drawn). The
    live count is the first watched type that grows (else the first)."""
    frame = _census(census)
    types = [c for c in frame.columns if c.startswith("type:")]
    live = next((c for c in types if frame[c].dropna().nunique() > 1), types[0] if types else "type:?")
    return metric_panels(frame, [live, "tasks", "rss_mb", "latency_end_ms"],
                         title=title or "per cycle: live sessions, tasks, memory, reply time")


def _third(values: Sequence[float], last: bool) -> float:
    k = max(1, len(values) // 3)
    part = values[-k:] if last else values[:k]
    return sum(part) / len(part)


def latency_split(census: Any, *, title: str | None = None) -> Chart | Note:
    """Reply time per cycle, stacked: time in the LLM call and the backend's
    own time. A prompt that grows grows the lower bar; a backend slowed by
    what it keeps grows the upper one. The caption says which grew, from
    the first and last third of the cycles."""
    split = split_latency(_census(census))
    title = title or "where the reply time goes"
    if split.empty or split.isna().all().all():
        return Note(title, "no reply was timed in this run (no text turn, or no reply arrived)")
    fig = Chart(figsize=(7.5, 3.8))
    ax = fig.subplots()
    llm = split["llm_ms"].fillna(0.0)
    backend = split["backend_ms"].fillna(0.0)
    ax.bar(split.index, llm, label="LLM call", color="#5d8aa8")
    ax.bar(split.index, backend, bottom=llm, label="backend (TTS, tools, queues...)", color="#e39a5c")
    _cycles_axis(ax)
    ax.set_ylabel("reply time (ms)")
    fig.suptitle(title)
    _legend(fig, ax)
    parts, rising = [], []
    for label, values in (("LLM call", llm.tolist()), ("backend (TTS, tools, queues...)", backend.tolist())):
        a, b = _third(values, False), _third(values, True)
        grew = b > 1.2 * a and b - a > 5 and grows(values)
        if grew:
            rising.append(label)
        parts.append(f"the {label.split(' (')[0]} part {'grew' if grew else 'stayed'} {a:.0f} -> {b:.0f} ms")
    share = _third(llm.tolist(), True) / max(1e-9, _third(llm.tolist(), True) + _third(backend.tolist(), True))
    caption = (f"Mean of the first and last third of the cycles: {'; '.join(parts)}. "
               f"In the last cycles the LLM call is {share:.0%} of the reply.")
    if not rising:
        caption += " Neither part grew."
    if len(split) < 2 or len(set(llm.tolist())) <= 1 and len(set(backend.tolist())) <= 1:
        return Note(title, f"the same reply time every cycle: LLM call {llm.iloc[-1]:.0f} ms, "
                           f"backend {backend.iloc[-1]:.0f} ms")
    return fig.say(caption, rising)


def retention_timeline(timeline: Any, metrics: Sequence[str] | None = None, *, title: str | None = None) -> Chart | Note:
    """Counts sampled after the last cycle: a transient retention returns to
    its baseline (its lifetime is where it drops), a leak stays up (said in
    a :class:`Note`: a flat line needs no chart).

    Args:
        timeline: timeline samples, a timeline frame or a ``RunResult``.
        metrics: columns (counts); default every ``type:`` column (tasks
            usually number far more and would flatten the drop to read).
        title: figure title.
    """
    frame = _timeline(timeline)
    title = title or "after the last cycle"
    chosen = [m for m in (metrics or [c for c in frame.columns if c.startswith("type:")]) if m in frame.columns]
    if not chosen or frame.empty:
        return Note(title, "no sample was taken after the last cycle")
    end = float(frame.index.max()) if len(frame.index) else 0.0
    if not _varying(frame, chosen):
        values = ", ".join(f"{frame[m].dropna().iloc[-1]:g} {metric_label(m, short=True)}" for m in chosen
                           if not frame[m].dropna().empty)
        return Note(title, f"unchanged for {end:.1f} s after the last cycle ({values}): nothing was released "
                           "in that time")
    fig = Chart(figsize=(7.5, 3.8))
    ax = fig.subplots()
    for m in chosen:
        ax.step(frame.index, frame[m], where="post", label=metric_label(m, short=True))
    ax.set_xlabel("time after the last cycle (s)")
    ax.set_ylabel("still alive (count)")
    ax.set_ylim(bottom=0)
    _count_axis(ax)
    ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    _legend(fig, ax)
    parts = []
    for m in chosen:
        ys = frame[m].dropna()
        if ys.nunique() <= 1:
            parts.append(f"{metric_label(m, short=True)} stayed at {ys.iloc[-1]:g}")
            continue
        drop = ys[ys < ys.iloc[0]]
        when = f", dropped at {float(drop.index[0]):.2f} s" if not drop.empty else ""
        parts.append(f"{metric_label(m, short=True)} {ys.iloc[0]:g} -> {ys.iloc[-1]:g}{when}")
    rising = [metric_label(m, short=True) for m in chosen if grows(frame[m].dropna().tolist())]
    return fig.say(f"Sampled every few hundred ms for {end:.1f} s after the last cycle: {'; '.join(parts)}. "
                   "A drop is a transient retention ending; a line that stays is kept.", rising)


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
    color = _VERDICT_COLORS.get(verdict, "#333")
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
        unit = metric_label(metric).rpartition(" (")[2].rstrip(")")
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
                parts.append(f"{metric_label(metric, short=True)}, {label}: {_trend(ys)}")
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
            _cycles_axis(ax)
        if unit in ("count", "items", "rows"):
            _count_axis(ax)
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


def fix_comparison(outcomes: Mapping[str, Any], metric: str = "type:ServiceContext", *, ncols: int = 3) -> Chart | Note:
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
        color = _VERDICT_COLORS.get(verdict, "#333")
        if values:
            ax.plot(range(len(values)), values, marker="o", color=color, label=name)
            top = max(top, max(values))
            varied = varied or len(set(values)) > 1
            if grows(values):
                rising.append(name)
            else:
                fig.allow_flat(ax, f"{name} keeps nothing per cycle")
            parts.append(f"{name} ({verdict}): {_trend(values)}")
        else:
            ax.text(0.5, 0.5, "flat: nothing kept\n(a constant is not charted)", ha="center", va="center",
                    transform=ax.transAxes, color="#1e8449")
            ax.plot([0], [0], alpha=0, label=name)
            fig.allow_flat(ax, f"{name}: the signal never changed")
            parts.append(f"{name} ({verdict}): never changed")
        ax.set_title(f"{name}\n{verdict}", fontsize=9, color=color)
        _cycles_axis(ax)
        _count_axis(ax)
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
        if len(figures) >= limit or row.change in ("unchanged",):
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
                    parts.append(f"{side}: {_trend(vs)}")
                    if grows(vs):
                        rising.append(side)
            _cycles_axis(ax)
            ax.set_ylabel(metric_label(metric))
            ax.set_ylim(bottom=0)
            fig.suptitle(f"{row.unit}: {metric_label(metric, short=True)} per cycle, {row.change}", fontsize=10)
            _legend(fig, ax)
            figures.append(fig.say(f"{metric_label(metric, short=True)} per cycle, before and after: "
                                   f"{'; '.join(parts)}.", rising))
            if len(figures) >= limit:
                break
    return figures


def retention_sizes(report: Any) -> Chart:
    """Bytes each retention group keeps: deep size (pympler) and retained
    size (freed if the root edge were cut), in KiB.

    Args:
        report: a :class:`~leaklab.retention.RetentionReport` or its ``as_dict()``.
    """
    d = report.as_dict() if hasattr(report, "as_dict") else dict(report)
    groups = d.get("groups") or []
    if not groups or not any(g.get("deep_bytes") or g.get("retained_bytes") for g in groups):
        return Note("what the survivors keep alive", "no survivor was found after the cycles" if not groups
                    else "the survivors' sizes were not measured")
    fig = Chart(figsize=(7.5, 0.9 + 0.6 * max(1, len(groups))))
    ax = fig.subplots()
    fig.allow_flat(ax, "one bar per group: sizes side by side, not a series over time")
    if groups:
        names = [f"{g['count']} × {g['type']} [{g['root_kind']}]" for g in groups]
        y = list(range(len(groups)))
        ax.barh([i + 0.2 for i in y], [g.get("deep_bytes", 0) / 1024 for g in groups], height=0.4,
                label="deep (pympler asizeof)", color="#5d8aa8")
        ax.barh([i - 0.2 for i in y], [g.get("retained_bytes", 0) / 1024 for g in groups], height=0.4,
                label="retained (freed if the root let go)", color="#c0392b")
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
    else:
        _no_data(ax, "survivors")
        ax.set_yticks([])
    ax.set_xlabel("size (KiB)")
    ax.set_ylabel("survivor group")
    ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle("what the survivors keep alive")
    _legend(fig, ax)
    top = max(groups, key=lambda g: g.get("retained_bytes") or 0)
    return fig.say(f"{len(groups)} group(s) of survivors. The largest retained: {top['count']} × {top['type']} "
                   f"({top['root_kind']}), {(top.get('retained_bytes') or 0) / 1024:,.0f} KiB retained, "
                   f"{(top.get('deep_bytes') or 0) / 1024:,.0f} KiB deep. Groups that share a root retain the same "
                   "bytes: the retained size is freed once, by cutting that root.")


def hunt_candidates(result: Any) -> Chart:
    """What each candidate sequence grew, against its own baseline: one bar
    per sequence tried (how many metrics grew cycle after cycle), the ones
    that became a finding in red. ``result``: a
    :class:`~leaklab.hunt.HuntResult` or its ``as_dict()``."""
    data = result.as_dict() if hasattr(result, "as_dict") else dict(result)
    tried = data.get("tried") or []
    found = {f.get("found_as") for f in data.get("findings") or []}
    if not tried:
        return Note("hunt", "no sequence was tried")
    names = [t["sequence"] for t in tried]
    counts = [len(t.get("leaks") or []) for t in tried]
    if not any(counts):
        return Note(f"hunt on {data.get('target')}", f"none of the {len(tried)} sequences tried grew any metric "
                                                      "cycle after cycle")
    fig = Chart(figsize=(8, max(2.5, 0.28 * len(tried) + 1.2)))
    ax = fig.add_subplot()
    fig.allow_flat(ax, "one bar per sequence tried")
    colors = [_VERDICT_COLORS["leak"] if n in found else ("#7f8c8d" if c else _VERDICT_COLORS["none"])
              for n, c in zip(names, counts)]
    y = list(range(len(names)))[::-1]
    ax.barh(y, counts, color=colors)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("metrics growing cycle after cycle (count)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"hunt on {data.get('target')}: red, first seen here (a finding)", fontsize=10)
    fig.suptitle("what each candidate sequence grew")
    top = max(zip(counts, names))
    return fig.say(f"{len(tried)} sequences tried, {sum(1 for c in counts if c)} grew something; "
                   f"{len(found - {None})} finding(s) (red). The most: {top[1]}, {top[0]} metric(s) growing.")
