"""What every plot shares: axis labels with units for census columns,
the cycle axis, legends under the axes, a series' trend in words, the note
shown instead of a chart of constants.

Used by :mod:`.plots` and :mod:`.plots_fix`; a metric name is taken apart
by :mod:`leaklab.metrics` only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib.ticker import MaxNLocator

from .._platform import FDS_LABEL
from ..analysis import census_frame, timeline_frame
from ..metrics import Kind, parse
from .charts import Chart, Note

__all__ = [
    "CYCLE_LABEL",
    "UNITS",
    "census_of",
    "count_axis",
    "cycles_axis",
    "flat_note",
    "legend_below",
    "metric_label",
    "no_data",
    "number",
    "timeline_of",
    "trend",
    "unit_of",
    "varying",
]

CYCLE_LABEL = "cycle (one session opened and closed)"

UNITS: dict[str, tuple[str, str]] = {
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
    m = parse(metric)
    if m.kind is not None and m.subject:
        what, unit = {
            Kind.TYPE: (f"live {m.subject}", "count"),
            Kind.TASK: (f"pending tasks {m.subject}", "count"),
            Kind.CONTAINER: (f"len({m.subject})", "items"),
            Kind.LIFECYCLE: (f"calls to {m.subject}", "per cycle"),
            Kind.EXPECTED: (f"sessions ended ({m.subject})", "per cycle"),
        }.get(m.kind, (metric, "value"))
    else:
        what, unit = UNITS.get(metric, (metric, "value"))
    if short:
        return what
    return f"{what} ({unit})"


def unit_of(metric: str) -> str:
    """The unit of a census column's label (``"count"``, ``"MiB"``...)."""
    return metric_label(metric).rpartition(" (")[2].rstrip(")")



def census_of(data: Any) -> pd.DataFrame:
    """A census frame from records, a frame or a ``RunResult``."""
    records = getattr(data, "records", None)
    return census_frame(records if records is not None else data)


def timeline_of(data: Any) -> pd.DataFrame:
    """A timeline frame from samples, a frame or a ``RunResult``."""
    samples = getattr(data, "timeline", None)
    return timeline_frame(samples if samples is not None else data)


def no_data(ax: Any, what: str) -> None:
    """Say on an empty panel what was not measured."""
    ax.text(0.5, 0.5, f"no {what} measured", ha="center", va="center", transform=ax.transAxes, color="#777")


def cycles_axis(ax: Any) -> None:
    """The x axis of a per-cycle panel: whole cycles, a light grid."""
    ax.set_xlabel(CYCLE_LABEL)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)


def count_axis(ax: Any) -> None:
    """Whole numbers on the y axis."""
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def legend_below(fig: Chart, ax: Any) -> None:
    """The panel's legend outside the axes, under the x label: a legend never
    hides a line or a bar."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(handles)), fontsize=8, frameon=False)



def number(v: float) -> str:
    """A value in a caption: whole under 100 when it is, else 3 significant digits."""
    return f"{v:.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:.3g}"


def trend(values: Sequence[Any], unit: str = "") -> str:
    """A series in words: ``"1 -> 6 (peak 8)"``, ``"flat at 3"``."""
    ys = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not ys:
        return "not measured"
    if max(ys) == min(ys):
        return f"flat at {number(ys[0])}{unit}"
    return f"{number(ys[0])} -> {number(ys[-1])}{unit}" + (f" (peak {number(max(ys))})" if max(ys) > max(ys[0], ys[-1]) else "")


def flat_note(title: str, frame: pd.DataFrame, metrics: Sequence[str]) -> Note:
    """What is shown instead of a chart whose every series is constant."""
    values = ", ".join(f"{metric_label(m, short=True)} {frame[m].dropna().iloc[-1]:g}" for m in metrics
                       if m in frame.columns and not frame[m].dropna().empty)
    return Note(title, f"nothing changed from cycle to cycle ({values or 'no values'}): no chart")


def varying(frame: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """The columns of ``metrics`` that take more than one value."""
    return [m for m in metrics if m in frame.columns and frame[m].dropna().nunique() > 1]

