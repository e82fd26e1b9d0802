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

The outcome and fix plots live in :mod:`.plots_fix`, the axes and labels
they all share in :mod:`.plots_common`; both are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..analysis import split_connect, split_latency
from ..metrics import Kind, Verdict, is_kind
from ..metrics import name as metric_name
from .charts import Chart, Note, grows
from .plots_common import (
    census_of,
    number,
    count_axis,
    cycles_axis,
    flat_note,
    legend_below,
    metric_label,
    no_data,
    timeline_of,
    trend,
    unit_of,
    varying,
)
from .plots_fix import comparison, decisive, fix_comparison, outcome_series
from .style import VERDICT_LINE_COLORS

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
    "task_time",
]


def _default_counts(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if is_kind(c, Kind.TYPE)] + [c for c in ("tasks",) if c in frame.columns]


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
    frame = census_of(census)
    chosen = [m for m in (metrics or _default_counts(frame)) if m in frame.columns]
    title = title or "what each cycle leaves alive"
    if chosen and not varying(frame, chosen):
        return flat_note(title, frame, chosen)
    fig = Chart(figsize=(7.5, 4))
    ax = fig.subplots()
    for m in chosen:
        ax.plot(frame.index, frame[m], marker="o", label=metric_label(m, short=True))
    if not chosen:
        no_data(ax, "counts")
    cycles_axis(ax)
    count_axis(ax)
    ax.set_ylabel("live after the cycle (count)")
    ax.set_ylim(bottom=0)
    fig.suptitle(title)
    legend_below(fig, ax)
    rising = [metric_label(m, short=True) for m in chosen if grows(frame[m].dropna().tolist())]
    parts = "; ".join(f"{metric_label(m, short=True)} {trend(frame[m].dropna().tolist())}" for m in chosen)
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
    frame = census_of(data) if x == "cycle" else timeline_of(data)
    present = [m for m in metrics if m in frame.columns and not frame[m].dropna().empty]
    flat = [m for m in present if frame[m].dropna().nunique() <= 1]
    shown = [m for m in present if m not in flat]
    missing = [metric_label(m, short=True) for m in metrics if m not in present]
    if not shown:
        if present:
            return flat_note(title or "per cycle", frame, present)
        return Note(title or "per cycle", f"not measured: {', '.join(missing)}")
    n = max(1, len(shown))
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Chart(figsize=(4.2 * ncols, 2.9 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, m in zip(axes, shown, strict=False):
        series = frame[m].dropna() if m in frame.columns else pd.Series(dtype="float64")
        if series.empty:
            no_data(ax, metric_label(m, short=True))
        else:
            ax.plot(series.index, series.to_numpy(), marker="o" if x == "cycle" else None, color="#2e5c8a",
                    label=metric_label(m, short=True))
        ax.set_title(metric_label(m, short=True), fontsize=9)
        unit = unit_of(m)
        ax.set_ylabel(unit)
        if unit in ("count", "items", "rows"):
            count_axis(ax)
            if not series.empty:
                ax.set_ylim(bottom=0)
        if x == "cycle":
            cycles_axis(ax)
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
    caption = (f"{where.capitalize()}: " + "; ".join(f"{metric_label(m, short=True)} {trend(frame[m].dropna().tolist())}"
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
    frame = census_of(census)
    types = [c for c in frame.columns if is_kind(c, Kind.TYPE)]
    live = next((c for c in types if frame[c].dropna().nunique() > 1), types[0] if types else metric_name(Kind.TYPE, "?"))
    return metric_panels(frame, [live, "tasks", "rss_mb", "latency_end_ms"],
                         title=title or "per cycle: live sessions, tasks, memory, reply time")


def _third(values: Sequence[float], last: bool) -> float:
    k = max(1, len(values) // 3)
    part = values[-k:] if last else values[:k]
    return sum(part) / len(part)


def _loop_details(data: Any, details: Any) -> dict[str, Any]:
    """The loop probe's details of a ``RunResult`` (or the ones given)."""
    if details is not None:
        return dict(details)
    return dict((getattr(data, "details", None) or {}).get("loop") or {})


def _held_label(functions: dict[str, Any], top: int = 2) -> str:
    names = [".".join(k.split(".")[-2:]) for k in list(functions)[:top]]  # Class.method / module.function
    return "loop held by the app" + (f" ({', '.join(names)})" if names else "")


def latency_split(census: Any, *, title: str | None = None, details: Any = None) -> Chart | Note:
    """Reply time per cycle, stacked: time in the LLM call and the backend's
    own time; where the loop probe measured it, the backend's time splits
    into the time the app's code held the event loop (named by its top
    functions) and the rest (I/O, other tasks), and a second panel splits
    each connect the same way. A prompt that grows grows the lower bar; a
    backend slowed by what it keeps grows the upper ones. The caption says
    which grew, from the first and last third of the cycles.

    Args:
        census: records, a census frame or a ``RunResult`` (its loop details
            name the functions).
        details: the loop probe's details, when ``census`` is no ``RunResult``.
    """
    frame = census_of(census)
    split = split_latency(frame)
    title = title or "where the reply time goes"
    if split.empty or split[["llm_ms", "backend_ms"]].isna().all().all():
        return Note(title, "no reply was timed in this run (no text turn, or no reply arrived)")
    steps = _loop_details(census, details).get("steps") or {}
    llm = split["llm_ms"].fillna(0.0)
    backend = split["backend_ms"].fillna(0.0)
    held = split["blocked_ms"].notna().any()
    backend_label = "backend (TTS, tools, queues...)"
    parts: list[tuple[str, pd.Series, str]] = [("LLM call", llm, "#5d8aa8")]
    if held:
        blocked = split["blocked_ms"].fillna(0.0)
        functions = dict((steps.get("reply") or {}).get("functions") or {})
        parts += [(_held_label(functions), blocked, "#c0504d"),
                  ("I/O and other tasks", (backend - blocked).clip(lower=0.0), "#e39a5c")]
    else:
        parts.append((backend_label, backend, "#e39a5c"))
    connect = split_connect(frame) if held else None
    with_connect = connect is not None and connect["blocked_ms"].notna().any() and connect["connect_ms"].notna().any()
    fig = Chart(figsize=(7.5, 3.8) if not with_connect else (9.5, 3.8))
    axes = fig.subplots(1, 2 if with_connect else 1, squeeze=False)[0]
    ax = axes[0]
    bottom = pd.Series(0.0, index=split.index)
    for label, values, color in parts:
        ax.bar(split.index, values, bottom=bottom, label=label, color=color)
        bottom = bottom + values
    cycles_axis(ax)
    ax.set_ylabel("reply time (ms)")
    if with_connect:
        ax.set_title("a reply", fontsize=9)
        cax = axes[1]
        c_functions = dict((steps.get("connect") or {}).get("functions") or {})
        c_blocked = connect["blocked_ms"].fillna(0.0)
        cax.bar(connect.index, c_blocked, label=_held_label(c_functions, top=1) + ", connect", color="#8c3b39")
        cax.bar(connect.index, connect["rest_ms"].fillna(0.0), bottom=c_blocked,
                label="I/O and other tasks, connect", color="#f2c69b")
        cycles_axis(cax)
        cax.set_ylabel("connect time (ms)")
        cax.set_title("a connect (to the greeting)", fontsize=9)
    fig.suptitle(title)
    if with_connect:  # one legend under both panels
        handles, labels = [], []
        for a in axes:
            h, lab = a.get_legend_handles_labels()
            handles += h
            labels += lab
        fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    else:
        legend_below(fig, ax)
    said, rising = [], []
    for label, values, _ in parts:
        v = values.tolist()
        a, b = _third(v, False), _third(v, True)
        grew = b > 1.2 * a and b - a > 5 and grows(v)
        if grew:
            rising.append(label)
        said.append(f"the {label.split(' (')[0]} part {'grew' if grew else 'stayed'} {a:.0f} -> {b:.0f} ms")
    share = _third(llm.tolist(), True) / max(1e-9, _third(llm.tolist(), True) + _third(backend.tolist(), True))
    caption = (f"Mean of the first and last third of the cycles: {'; '.join(said)}. "
               f"In the last cycles the LLM call is {share:.0%} of the reply.")
    if held:
        named = dict((steps.get("reply") or {}).get("functions") or {})
        if named:
            caption += " While a reply ran, the loop ran " + ", ".join(
                f"{k} ({v:.0f} ms per reply)" for k, v in list(named.items())[:3]) + "."
    if with_connect:
        c_held, c_rest = connect["blocked_ms"].fillna(0.0).tolist(), connect["rest_ms"].fillna(0.0).tolist()
        caption += (f" A connect: the loop held {_third(c_held, False):.0f} -> {_third(c_held, True):.0f} ms, "
                    f"the rest {_third(c_rest, False):.0f} -> {_third(c_rest, True):.0f} ms.")
        c_named = dict((steps.get("connect") or {}).get("functions") or {})
        if c_named:
            caption += " While a connect ran, the loop ran " + ", ".join(
                f"{k} ({v:.0f} ms per connect)" for k, v in list(c_named.items())[:3]) + "."
        if grows(c_held) and _third(c_held, True) > 1.2 * _third(c_held, False) + 5:
            rising.append(_held_label(c_functions, top=1) + ", connect")
    if not rising:
        caption += " Neither part grew." if len(parts) == 2 else " No part grew."
    if len(split) < 2 or all(len(set(values.tolist())) <= 1 for _, values, _ in parts):
        return Note(title, f"the same reply time every cycle: LLM call {llm.iloc[-1]:.0f} ms, "
                           f"backend {backend.iloc[-1]:.0f} ms")
    return fig.say(caption, rising)


def task_time(result: Any, *, top: int = 5, title: str | None = None) -> Chart | Note:
    """The loop's time per cycle by task: the ms each coroutine (or loop
    callback) was sampled running on the loop thread, the costliest ``top``
    (those that slow first). The caption says which slow and which ran while
    the backend should have been idle (a task left spinning).

    Args:
        result: a ``RunResult`` (its summary's ``time`` and its loop details).
    """
    title = title or "the loop's time by task"
    time_ = (result.summary().get("time") or {}) if hasattr(result, "summary") else dict(result.get("time") or {})
    details = _loop_details(result, None)
    coros = dict(time_.get("coroutines") or {})
    idle = dict((time_.get("idle") or {}).get("coroutines") or {})
    idle_text = (" While the backend should have been idle after the cycles, the loop ran "
                 + ", ".join(f"{k} ({v:.0f} ms)" for k, v in list(idle.items())[:3]) + ".") if idle else ""
    if not coros:
        return Note(title, "no task was sampled on the loop during the cycles (the loop probe did not run)"
                    + idle_text)
    per = details.get("coroutines") or {}
    names = list(coros)[:top]
    fig = Chart(figsize=(7.5, 3.8))
    ax = fig.subplots()
    drawn = []
    for name in names:
        values = dict((int(c), float(ms)) for c, ms in per.get(name) or [])
        cycles = sorted(values)
        if not cycles:
            continue
        ax.plot(cycles, [values[c] for c in cycles], marker="o", ms=3, label=name[:50])
        drawn.append(name)
    if not drawn:
        return Note(title, "the loop probe's per-cycle samples are not in this result" + idle_text)
    cycles_axis(ax)
    ax.set_ylabel("time on the loop (ms per cycle)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    legend_below(fig, ax)
    slows = [k for k in drawn if coros[k].get("verdict") == Verdict.SLOWS]
    caption = "Sampled ms per cycle of each task on the loop thread: " + "; ".join(
        f"{k} {number(coros[k].get('first') or 0.0)} -> {number(coros[k].get('last') or 0.0)} ms"
        + (f" (slows, {coros[k].get('per_cycle'):+.2g} ms/cycle)" if k in slows else "") for k in drawn) + "."
    if not slows:
        caption += " None of them slows."
    caption += idle_text
    if all(len({round(float(ms), 3) for _, ms in per.get(k) or []}) <= 1 for k in drawn):
        fig.allow_flat(ax, "every task took the same time each cycle")
    return fig.say(caption, [k[:50] for k in slows])


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
    frame = timeline_of(timeline)
    title = title or "after the last cycle"
    chosen = [m for m in (metrics or [c for c in frame.columns if is_kind(c, Kind.TYPE)]) if m in frame.columns]
    if not chosen or frame.empty:
        return Note(title, "no sample was taken after the last cycle")
    end = float(frame.index.max()) if len(frame.index) else 0.0
    if not varying(frame, chosen):
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
    count_axis(ax)
    ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    legend_below(fig, ax)
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
        no_data(ax, "survivors")
        ax.set_yticks([])
    ax.set_xlabel("size (KiB)")
    ax.set_ylabel("survivor group")
    ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle("what the survivors keep alive")
    legend_below(fig, ax)
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
    colors = [VERDICT_LINE_COLORS[Verdict.LEAK] if n in found else ("#7f8c8d" if c else VERDICT_LINE_COLORS[Verdict.NONE])
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
