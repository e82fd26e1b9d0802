"""Plots for notebooks and the HTML report. Each function returns a
:class:`matplotlib.figure.Figure` with labelled axes and units.

Figures are made with ``Figure()``, not ``pyplot``: no global figure
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
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .._platform import FDS_LABEL
from ..analysis import census_frame, split_latency, timeline_frame

__all__ = [
    "counts_per_cycle",
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


def _legend(fig: Figure, ax: Any) -> None:
    # Outside the axes, under the x label: a legend never hides a line or a bar.
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(handles)), fontsize=8, frameon=False)


def _default_counts(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("type:")] + [c for c in ("tasks",) if c in frame.columns]


def counts_per_cycle(census: Any, metrics: Sequence[str] | None = None, *, title: str | None = None) -> Figure:
    """Counts per cycle on one axis (live watched instances and pending tasks
    by default): a leak is a staircase, a correct backend a flat line.

    Args:
        census: census records, a census frame or a ``RunResult``.
        metrics: census columns to draw (counts); default every ``type:``
            column and ``tasks``.
        title: figure title.
    """
    frame = _census(census)
    chosen = [m for m in (metrics or _default_counts(frame)) if m in frame.columns]
    fig = Figure(figsize=(7.5, 4), layout="constrained")
    ax = fig.subplots()
    for m in chosen:
        ax.plot(frame.index, frame[m], marker="o", label=metric_label(m, short=True))
    if not chosen:
        _no_data(ax, "counts")
    _cycles_axis(ax)
    _count_axis(ax)
    ax.set_ylabel("live after the cycle (count)")
    ax.set_ylim(bottom=0)
    fig.suptitle(title or "what each cycle leaves alive")
    _legend(fig, ax)
    return fig


def metric_panels(data: Any, metrics: Sequence[str], *, title: str | None = None, x: str = "cycle", ncols: int = 2) -> Figure:
    """One panel per metric, each with its own unit.

    Args:
        data: a census (``x="cycle"``) or a timeline (``x="t"``).
        metrics: columns; a missing one gets an empty panel that says so.
        title: figure title.
        x: ``"cycle"`` or ``"t"`` (seconds after the last cycle).
        ncols: panels per row.
    """
    frame = _census(data) if x == "cycle" else _timeline(data)
    n = max(1, len(metrics))
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols, 2.9 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, m in zip(axes, metrics, strict=False):
        series = frame[m].dropna() if m in frame.columns else pd.Series(dtype="float64")
        if series.empty:
            _no_data(ax, metric_label(m, short=True))
        else:
            ax.plot(series.index, series.to_numpy(), marker="o" if x == "cycle" else None, color="#2e5c8a")
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
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def overview(census: Any, *, title: str | None = None) -> Figure:
    """The symptom per cycle: live contexts, pending tasks, resident memory
    and reply time (four panels)."""
    frame = _census(census)
    live = "type:ServiceContext" if "type:ServiceContext" in frame.columns else next(
        (c for c in frame.columns if c.startswith("type:")), "type:ServiceContext")
    return metric_panels(frame, [live, "tasks", "rss_mb", "latency_end_ms"],
                         title=title or "per cycle: live contexts, tasks, memory, reply time")


def latency_split(census: Any, *, title: str | None = None) -> Figure:
    """Reply time per cycle, stacked: time in the LLM call and the backend's
    own time. A slow LLM grows the lower bar; a backend slowed by what it
    keeps grows the upper one."""
    split = split_latency(_census(census))
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.subplots()
    if split.empty or split.isna().all().all():
        _no_data(ax, "reply time")
    else:
        llm = split["llm_ms"].fillna(0.0)
        backend = split["backend_ms"].fillna(0.0)
        ax.bar(split.index, llm, label="LLM call", color="#5d8aa8")
        ax.bar(split.index, backend, bottom=llm, label="backend (TTS, tools, queues...)", color="#e39a5c")
    _cycles_axis(ax)
    ax.set_ylabel("reply time (ms)")
    fig.suptitle(title or "where the reply time goes")
    _legend(fig, ax)
    return fig


def retention_timeline(timeline: Any, metrics: Sequence[str] | None = None, *, title: str | None = None) -> Figure:
    """Counts sampled after the last cycle: a transient retention returns to
    its baseline (its lifetime is where it drops), a leak stays up.

    Args:
        timeline: timeline samples, a timeline frame or a ``RunResult``.
        metrics: columns (counts); default every ``type:`` column (tasks
            usually number far more and would flatten the drop to read).
        title: figure title.
    """
    frame = _timeline(timeline)
    chosen = [m for m in (metrics or [c for c in frame.columns if c.startswith("type:")]) if m in frame.columns]
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for m in chosen:
        ax.step(frame.index, frame[m], where="post", label=metric_label(m, short=True))
    if not chosen:
        _no_data(ax, "timeline")
    ax.set_xlabel("time after the last cycle (s)")
    ax.set_ylabel("still alive (count)")
    ax.set_ylim(bottom=0)
    _count_axis(ax)
    ax.grid(True, alpha=0.3)
    fig.suptitle(title or "retention timeline")
    _legend(fig, ax)
    return fig


def outcome_series(outcome: Any, *, ncols: int = 3) -> Figure:
    """A checklist item's signals per cycle, one panel each, titled with the verdict.

    Args:
        outcome: a :class:`~leaklab.checklist.Outcome` or its ``as_dict()``.
        ncols: panels per row.
    """
    d = outcome.as_dict() if hasattr(outcome, "as_dict") else dict(outcome)
    series: Mapping[str, Sequence[float | None]] = d.get("series") or {}
    records = [{"cycle": i, **{m: (v[i] if i < len(v) else None) for m, v in series.items()}}
               for i in range(max((len(v) for v in series.values()), default=0))]
    metrics = list(series) or ["no signal"]
    fig = metric_panels(records if records else [{"cycle": 0}], metrics, ncols=ncols)
    color = _VERDICT_COLORS.get(d.get("verdict", ""), "#333")
    fig.suptitle(f"{d.get('id', '')} {d.get('title', '')}: {d.get('verdict', '')}", color=color)
    return fig


def fix_comparison(outcomes: Mapping[str, Any], metric: str = "type:ServiceContext", *, ncols: int = 3) -> Figure:
    """The same experiment on several backends, side by side: one panel per
    variant (faulty, proposed fix, full fix...), same y scale, verdict in
    the title.

    Args:
        outcomes: variant name -> :class:`~leaklab.checklist.Outcome` (what
            :func:`~leaklab.checklist.prove_fix_async` returns).
        metric: the signal to compare.
        ncols: panels per row.
    """
    items = list(outcomes.items())
    n = max(1, len(items))
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4 * ncols, 2.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    top = 1.0
    for ax, (name, outcome) in zip(axes, items, strict=False):
        d = outcome.as_dict() if hasattr(outcome, "as_dict") else dict(outcome)
        values = [v for v in (d.get("series") or {}).get(metric, []) if v is not None]
        verdict = d.get("verdict", "")
        color = _VERDICT_COLORS.get(verdict, "#333")
        if values:
            ax.plot(range(len(values)), values, marker="o", color=color)
            top = max(top, max(values))
        else:
            _no_data(ax, metric_label(metric, short=True))
        ax.set_title(f"{name}\n{verdict}", fontsize=9, color=color)
        _cycles_axis(ax)
        _count_axis(ax)
        ax.set_ylabel(metric_label(metric))
    for ax in axes[len(items):]:
        ax.set_visible(False)
    axes[0].set_ylim(0, top * 1.15 + 0.5)
    fig.suptitle(f"{metric_label(metric, short=True)} per cycle, side by side")
    return fig


def comparison(result: Any, *, limit: int = 8) -> list[Figure]:
    """One figure per changed measure of a :class:`~leaklab.compare.Comparison`:
    its per-cycle values before and after, overlaid on one axis. A measure
    with no per-cycle series (a lifecycle count) or the same constant on both
    sides gets no figure (the table says it)."""
    figures: list[Figure] = []
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
            fig = Figure(figsize=(6.5, 3.2), layout="constrained")
            ax = fig.subplots()
            for side, style in ((result.before.name, dict(color="#c0392b", marker="o")),
                                (result.after.name, dict(color="#1e8449", marker="s", linestyle="--"))):
                vs = series.get(side) or []
                if vs:
                    ax.plot(range(len(vs)), [v if v is not None else float("nan") for v in vs], label=side, **style)
            _cycles_axis(ax)
            ax.set_ylabel(metric_label(metric))
            ax.set_ylim(bottom=0)
            fig.suptitle(f"{row.unit}: {metric_label(metric, short=True)} per cycle, {row.change}", fontsize=10)
            _legend(fig, ax)
            figures.append(fig)
            if len(figures) >= limit:
                break
    return figures


def retention_sizes(report: Any) -> Figure:
    """Bytes each retention group keeps: deep size (pympler) and retained
    size (freed if the root edge were cut), in KiB.

    Args:
        report: a :class:`~leaklab.retention.RetentionReport` or its ``as_dict()``.
    """
    d = report.as_dict() if hasattr(report, "as_dict") else dict(report)
    groups = d.get("groups") or []
    fig = Figure(figsize=(7.5, 0.9 + 0.6 * max(1, len(groups))), layout="constrained")
    ax = fig.subplots()
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
    return fig


def hunt_candidates(result: Any) -> Figure:
    """What each candidate sequence grew, against its own baseline: one bar
    per sequence tried (how many metrics grew cycle after cycle), the ones
    that became a finding in red. ``result``: a
    :class:`~leaklab.hunt.HuntResult` or its ``as_dict()``."""
    data = result.as_dict() if hasattr(result, "as_dict") else dict(result)
    tried = data.get("tried") or []
    found = {f.get("found_as") for f in data.get("findings") or []}
    fig = Figure(figsize=(8, max(2.5, 0.28 * len(tried) + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    if not tried:
        _no_data(ax, "no sequence tried")
        return fig
    names = [t["sequence"] for t in tried]
    counts = [len(t.get("leaks") or []) for t in tried]
    colors = [_VERDICT_COLORS["leak"] if n in found else ("#7f8c8d" if c else _VERDICT_COLORS["none"])
              for n, c in zip(names, counts)]
    y = list(range(len(names)))[::-1]
    ax.barh(y, counts, color=colors)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("metrics growing cycle after cycle (count)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"hunt on {data.get('target')}: red, first seen here (a finding)", fontsize=10)
    return fig
