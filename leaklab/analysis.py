"""Verdicts over census data: does a metric grow per session, and does it stay?

This layer is pure: it never touches ``gc``, ``asyncio`` or the backend. It takes
the plain records the session wrote (or the frozen dataclasses below) and returns
pandas frames, verdicts and JSON-ready dicts, so every rule can be tested with
synthetic numbers.

Data model:

* A **census** is a list of per-cycle records
  ``{"cycle": int, "t": float, <metric>: number, ...}``. Cycle 0 is the baseline
  taken after warm-up, before the first cycle; cycles 1..N are taken after each
  cycle's settle phase.
* A **timeline** is a list of records ``{"t": seconds since the last cycle
  ended, <metric>: number, ...}`` sampled for a few seconds after the last cycle.

Metric names are namespaced: ``type:<Name>``, ``task:<coroutine qualname>``,
``container:<access path>`` (instance counts: only the non-zero ones may be
reported, so a missing value means 0), ``lifecycle:<Q.method>`` and
``expected:<Q.method>`` (calls counted / expected during the cycle), the
per-object lifecycle counts ``lifecycle_objects:``, ``lifecycle_closed:``,
``lifecycle_short:``, ``lifecycle_short_calls:``, ``lifecycle_owned:`` and
``lifecycle_ran_for:<Q.method>`` (see :func:`lifecycle_table`), latency
columns (``latency_first_ms``, ``latency_end_ms``, ``llm_ms``, ``backend_ms``)
and plain resources (``tasks``, ``rss_mb``, ``gc_objects``, ``tracemalloc_mb``,
``fds``, ``threads``, ``children``, ``cache_files``, ``cache_bytes``,
``db_rows``, ``db_bytes``).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = (
    "INSUFFICIENT",
    "LEAK",
    "NONE",
    "NORMAL",
    "TRANSIENT",
    "CensusRecord",
    "MetricVerdict",
    "Rule",
    "Thresholds",
    "TimelineSample",
    "census_frame",
    "judge",
    "latency_summary",
    "lifecycle_noun",
    "memory_summary",
    "lifecycle_table",
    "namespace",
    "robust_slope",
    "split_latency",
    "summarize",
    "timeline_frame",
)

Verdict = Literal["leak", "transient", "normal", "none", "insufficient"]
LEAK: Verdict = "leak"
TRANSIENT: Verdict = "transient"
NORMAL: Verdict = "normal"
NONE: Verdict = "none"
#: Too few judged cycles to tell growth from none (failed cycles do not count).
INSUFFICIENT: Verdict = "insufficient"

#: Namespaces whose columns list only what exists: a missing value is a count of 0.
ZERO_FILL_NAMESPACES: tuple[str, ...] = ("type", "task", "container")
#: Per-cycle call counters: tabulated by :func:`lifecycle_table`, not judged.
LIFECYCLE_PREFIXES: tuple[str, ...] = (
    "lifecycle:", "expected:",
    "lifecycle_objects:", "lifecycle_closed:", "lifecycle_short:", "lifecycle_short_calls:",
    "lifecycle_owned:", "lifecycle_ran_for:",
)
#: Per-object lifecycle columns -> their key in :func:`lifecycle_table`'s ``"objects"``.
_LIFECYCLE_OBJECT_KEYS: tuple[tuple[str, str], ...] = (
    ("lifecycle_objects:", "created"), ("lifecycle_closed:", "closed"), ("lifecycle_ran_for:", "ran_for"),
    ("lifecycle_owned:", "of"), ("lifecycle_short:", "short_lived"), ("lifecycle_short_calls:", "short_lived_calls"),
)
#: Per-cycle timings: summarized by :func:`latency_summary`, not judged.
LATENCY_COLUMNS: tuple[str, ...] = ("latency_first_ms", "latency_end_ms", "llm_ms", "backend_ms", "latency_connect_ms")
#: Resource metrics reported under ``"resources"`` by :func:`summarize`, in this order.
RESOURCE_METRICS: tuple[str, ...] = (
    "children", "fds", "cache_files", "cache_bytes", "db_rows", "db_bytes",
    "rss_mb", "gc_objects", "threads", "tracemalloc_mb",
)
_KEY_COLUMNS = ("cycle", "t")
#: What the census's full collection freed, per cycle: a rate, judged by
#: :func:`memory_summary`, not as growth.
GC_FREED_COLUMNS: tuple[str, ...] = ("gc_freed_objects", "gc_freed_bytes")
#: Cyclic garbage per cycle from which it is worth saying (64 KiB).
CYCLIC_MIN_BYTES = 64 * 1024
#: RSS growth over a run below which there is nothing to explain (MiB).
RSS_MIN_GROWTH_MB = 4.0
# Zero-fill families in a timeline: the sampler collects the whole family or none
# of it ("tasks" is the task census's total, always sampled with the per-coroutine counts).
_FAMILY = MappingProxyType({"type": ("type",), "task": ("task", "tasks"), "container": ("container",)})


def namespace(metric: str) -> str:
    """The namespace a metric's thresholds are looked up by.

    ``"type:ServiceContext"`` -> ``"type"``; un-prefixed names are their own
    namespace (``"tasks"``, ``"rss_mb"``).
    """
    return metric.split(":", 1)[0] if ":" in metric else metric


# -- input data model ---------------------------------------------------------


@dataclass(frozen=True)
class CensusRecord:
    """One census record: ``{"cycle": cycle, "t": t, **metrics}`` as a dataclass.

    Plain mappings of that flat shape are accepted everywhere this is.
    """

    cycle: int
    t: float
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The flat mapping form."""
        return {**self.metrics, "cycle": self.cycle, "t": self.t}


@dataclass(frozen=True)
class TimelineSample:
    """One timeline sample: ``{"t": t, **metrics}``, ``t`` in seconds since the last cycle ended."""

    t: float
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The flat mapping form."""
        return {**self.metrics, "t": self.t}


Census = Sequence[Mapping[str, Any] | CensusRecord] | pd.DataFrame
Timeline = Sequence[Mapping[str, Any] | TimelineSample] | pd.DataFrame


def _flat(record: Any) -> dict[str, Any]:
    if isinstance(record, (CensusRecord, TimelineSample)):
        return record.to_record()
    if isinstance(record, Mapping):
        return dict(record)
    raise TypeError(f"a record must be a mapping or CensusRecord/TimelineSample, not {type(record).__name__}")


def _numeric_frame(rows: list[dict[str, Any]], key: str) -> pd.DataFrame:
    """Rows -> float frame, zero-filling count namespaces, columns sorted."""
    df = pd.DataFrame.from_records(rows)
    df = df.drop(columns=[key])
    # astype(float) turns None into NaN and refuses non-numeric text: a string
    # in a metric is a probe bug worth an error, not a silent NaN.
    df = df.astype("float64")
    zero = [c for c in df.columns if ":" in c and namespace(c) in ZERO_FILL_NAMESPACES]
    if zero:
        df[zero] = df[zero].fillna(0.0)
    return df.reindex(columns=sorted(df.columns))


def census_frame(records: Census) -> pd.DataFrame:
    """The census as a float frame indexed by ``cycle`` (sorted), columns sorted.

    Missing or NaN values of ``type:``/``task:``/``container:`` columns become 0
    (the probes only report what exists); other missing values stay NaN.

    Args:
        records: census records (mappings or :class:`CensusRecord`), or a frame
            already made by this function (returned as a copy).

    Returns:
        One row per cycle; ``t`` is kept as a column.

    Raises:
        ValueError: a record has no ``cycle``, a non-integer or duplicated cycle,
            or a non-numeric metric value.
    """
    if isinstance(records, pd.DataFrame):
        if records.index.name == "cycle":
            return records.copy()
        records = records.to_dict("records")
    rows = [_flat(r) for r in records]
    if not rows:
        return pd.DataFrame(index=pd.Index([], dtype="int64", name="cycle"))
    cycles = []
    for r in rows:
        c = r.get("cycle")
        if c is None or isinstance(c, bool) or float(c) != int(c):
            raise ValueError(f"census record needs an integer 'cycle': {c!r}")
        cycles.append(int(c))
    if len(set(cycles)) != len(cycles):
        raise ValueError(f"duplicated cycles in census: {sorted(cycles)}")
    df = _numeric_frame(rows, "cycle")
    df.index = pd.Index(cycles, dtype="int64", name="cycle")
    return df.sort_index()


def timeline_frame(samples: Timeline | None) -> pd.DataFrame:
    """The timeline as a float frame indexed by ``t`` (sorted), columns sorted.

    Same filling rule as :func:`census_frame`. ``None`` or ``[]`` gives an empty frame.

    Raises:
        ValueError: a sample has no numeric ``t``.
    """
    if samples is None:
        samples = []
    if isinstance(samples, pd.DataFrame):
        if samples.index.name == "t":
            return samples.copy()
        samples = samples.to_dict("records")
    rows = [_flat(s) for s in samples]
    if not rows:
        return pd.DataFrame(index=pd.Index([], dtype="float64", name="t"))
    ts = []
    for r in rows:
        t = r.get("t")
        if t is None or isinstance(t, bool) or not math.isfinite(float(t)):
            raise ValueError(f"timeline sample needs a finite 't': {t!r}")
        ts.append(float(t))
    df = _numeric_frame(rows, "t")
    df.index = pd.Index(ts, dtype="float64", name="t")
    return df.sort_index(kind="stable")


# -- statistics ---------------------------------------------------------------


def _floats(v: Any) -> np.ndarray:
    if isinstance(v, (pd.Series, pd.Index)):
        return v.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(v, dtype="float64").ravel()


def robust_slope(y: Any, x: Any = None) -> float:
    """Theil–Sen slope: the median of all pairwise slopes.

    A single outlier or a single jump moves the median of pairwise slopes far
    less than it moves least squares, which is why verdicts use it.
    O(n²) in time and memory: fine for hundreds of cycles.

    Args:
        y: values (sequence, array or Series); NaN/inf points are dropped.
        x: abscissas, same length as ``y``. Default: the Series' index if ``y``
            is a Series with a numeric index (so a census column gives a slope
            per cycle even with gaps), else positions 0..n-1.

    Returns:
        The slope as a float; 0.0 with fewer than 2 usable points or when all
        usable x are equal.
    """
    if x is None:
        if isinstance(y, pd.Series) and pd.api.types.is_numeric_dtype(y.index):
            x = y.index
        else:
            x = np.arange(len(y), dtype="float64")
    ya, xa = _floats(y), _floats(x)
    if ya.shape != xa.shape:
        raise ValueError(f"x and y differ in length: {xa.size} != {ya.size}")
    ok = np.isfinite(ya) & np.isfinite(xa)
    ya, xa = ya[ok], xa[ok]
    if ya.size < 2:
        return 0.0
    i, j = np.triu_indices(ya.size, k=1)
    dx = xa[j] - xa[i]
    keep = dx != 0
    if not keep.any():
        return 0.0
    return float(np.median((ya[j] - ya[i])[keep] / dx[keep]))


def _robust_scale(residuals: np.ndarray) -> float:
    """Noise level as a standard deviation estimate (1.4826 * MAD); 0 under 3 points.

    Exact counts that grow by the same amount every cycle have residuals that
    are all 0, hence scale 0: the noise floor only bites on noisy measures.
    """
    r = residuals[np.isfinite(residuals)]
    if r.size < 3:
        return 0.0
    return float(1.4826 * np.median(np.abs(r - np.median(r))))


def _concordance(y: np.ndarray) -> float:
    """Share of pairs (earlier, later) where the later value is strictly higher."""
    if y.size < 2:
        return 0.0
    i, j = np.triu_indices(y.size, k=1)
    return float(np.mean(y[j] > y[i]))


def _num(v: Any) -> float | int | None:
    """A JSON-safe number: NaN/inf/None -> None, numpy scalars -> Python."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    f = float(v)
    return f if math.isfinite(f) else None


# -- thresholds ---------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Thresholds of one namespace.

    Attributes:
        min_slope: robust per-cycle slope from which growth is per-session.
        min_total: least total growth (end - baseline) for a leak, and least
            excess of a mid-run peak over the baseline for a transient.
        return_tol: a value within ``baseline + return_tol`` is back at baseline.
        allow_transient: ``False`` for measures that rarely give memory back
            (RSS): they are judged ``leak`` or ``none`` only.
        peaks: a mid-run peak that comes back counts as growth (transient
            evidence). Only for exact counts: on a noisy measure one high sample
            is noise.
    """

    min_slope: float
    min_total: float
    return_tol: float
    allow_transient: bool = True
    peaks: bool = False


COUNT_RULE = Rule(min_slope=0.5, min_total=2.0, return_tol=0.5, peaks=True)

_DEFAULT_RULES: Mapping[str, Rule] = MappingProxyType({
    # Exact counts: one object per session is 1/cycle; a drift of 0.5/cycle is
    # an object every other session.
    **{ns: COUNT_RULE for ns in (
        "type", "task", "tasks", "container", "children", "fds", "threads", "cache_files", "db_rows",
    )},
    "rss_mb": Rule(min_slope=0.5, min_total=2.0, return_tol=1.0, allow_transient=False),
    "gc_objects": Rule(min_slope=50.0, min_total=250.0, return_tol=100.0),
    "allocated_blocks": Rule(min_slope=1000.0, min_total=5000.0, return_tol=2000.0),
    "uss_mb": Rule(min_slope=0.5, min_total=2.0, return_tol=1.0, allow_transient=False),
    "tracemalloc_mb": Rule(min_slope=0.25, min_total=1.0, return_tol=0.25),
    "cache_bytes": Rule(min_slope=1000.0, min_total=4000.0, return_tol=1000.0),
    # SQLite grows by pages: 4096 bytes is one page.
    "db_bytes": Rule(min_slope=4096.0, min_total=16384.0, return_tol=4096.0),
})


@dataclass(frozen=True)
class Thresholds:
    """All knobs of :func:`judge`: per-namespace :class:`Rule` plus global shape rules.

    Override a namespace with :meth:`override`, a global knob with
    ``dataclasses.replace(Thresholds(), noise_k=4)``.

    Attributes:
        rules: namespace -> rule (see :func:`namespace`).
        default_rule: for namespaces without a rule (unknown metrics are
            treated as counts).
        min_rising_frac: least share of consecutive differences >= 0 for a leak.
        max_step_frac: largest single step, as a share of the rise over the
            window, for a leak (so one jump is not a leak).
        slope_total_frac: the total growth must be at least this share of
            ``slope * cycles`` (growth consistent with the slope).
        stay_frac: with a timeline, a leak's last timeline value is above
            ``baseline + stay_frac * growth``.
        noise_k: growth must exceed ``noise_k`` robust standard deviations of the
            residuals around the slope, and values within that of the baseline
            count as back at baseline.
    """

    rules: Mapping[str, Rule] = field(default_factory=lambda: _DEFAULT_RULES)
    default_rule: Rule = COUNT_RULE
    min_rising_frac: float = 0.6
    max_step_frac: float = 0.5
    slope_total_frac: float = 0.5
    stay_frac: float = 0.5
    noise_k: float = 3.0
    min_cycles: int = 3

    def __post_init__(self) -> None:
        # A read-only copy: a caller's dict mutated later must not change us.
        object.__setattr__(self, "rules", MappingProxyType(dict(self.rules)))

    __hash__ = None  # type: ignore[assignment]  # rules is a mapping: not hashable

    def rule_for(self, metric: str) -> Rule:
        """The rule of ``metric``'s namespace (an unknown ``*_bytes`` metric,
        such as a declared folder's, is judged like ``cache_bytes``)."""
        ns = namespace(metric)
        if ns not in self.rules and ns.endswith("_bytes") and "cache_bytes" in self.rules:
            return self.rules["cache_bytes"]
        return self.rules.get(ns, self.default_rule)

    def override(self, **changes: Rule | Mapping[str, Any]) -> Thresholds:
        """A copy with some namespaces' rules replaced or partly changed.

        Example: ``Thresholds().override(rss_mb={"min_slope": 1.0}, type=Rule(1, 3, 0.5))``.
        """
        rules = dict(self.rules)
        for ns, change in changes.items():
            rules[ns] = change if isinstance(change, Rule) else replace(rules.get(ns, self.default_rule), **change)
        return replace(self, rules=rules)


def _thresholds(th: Thresholds | Mapping[str, Rule | Mapping[str, Any]] | None) -> Thresholds:
    if th is None:
        return Thresholds()
    if isinstance(th, Thresholds):
        return th
    return Thresholds().override(**th)


# -- verdicts -----------------------------------------------------------------


@dataclass(frozen=True)
class MetricVerdict:
    """What :func:`judge` concluded about one metric.

    Attributes:
        metric: column name.
        start: baseline (cycle 0) value.
        end: value at the last cycle.
        per_cycle: robust (Theil–Sen) slope over the judged cycles.
        verdict: ``"leak"``, ``"transient"``, ``"normal"`` or ``"none"``.
        lifetime_s: for a transient, the timeline ``t`` from which the metric
            stays back at baseline; ``None`` when unknown or not transient.
        growth: ``end - start``.
        note: why, in words.
    """

    metric: str
    start: float
    end: float
    per_cycle: float
    verdict: Verdict
    lifetime_s: float | None = None
    growth: float = 0.0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> None, plain Python numbers)."""
        return {
            "metric": self.metric,
            "start": _num(self.start),
            "end": _num(self.end),
            "per_cycle": _num(self.per_cycle),
            "verdict": self.verdict,
            "lifetime_s": _num(self.lifetime_s),
            "growth": _num(self.growth),
            "note": self.note,
        }


def _is_judged(metric: str) -> bool:
    return (metric not in _KEY_COLUMNS and metric not in LATENCY_COLUMNS and metric not in GC_FREED_COLUMNS
            and not metric.startswith(LIFECYCLE_PREFIXES))


def _is_expected(metric: str, patterns: Iterable[str]) -> bool:
    return any(metric == p or fnmatch.fnmatchcase(metric, p) for p in patterns)


def _timeline_series(tl: pd.DataFrame, metric: str) -> pd.Series | None:
    """The metric's timeline, or None when the timeline says nothing about it."""
    if tl.empty:
        return None
    if metric in tl.columns:
        s = tl[metric].dropna()
        return s if len(s) else None
    ns = namespace(metric)
    if ":" in metric and ns in _FAMILY:
        # The sampler reports only what exists: if it sampled this family at
        # all, a missing instance count is 0. If it did not, we know nothing
        # (calling a leak "back to 0" would be the worse mistake).
        if any(namespace(c) in _FAMILY[ns] for c in tl.columns):
            return pd.Series(0.0, index=tl.index)
    return None


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def _judge_one(
    metric: str,
    col: pd.Series,
    tl: pd.Series | None,
    *,
    cycles_excluded: int,
    expected: bool,
    rule: Rule,
    th: Thresholds,
) -> MetricVerdict:
    after = col[col.index >= 1].dropna()
    window = col[col.index >= 1 + cycles_excluded].dropna()
    notes: list[str] = []
    base = float(col.get(0, np.nan))
    if math.isfinite(base):
        start = float(base)
    elif len(after):
        start = float(after.iloc[0])
        notes.append("no baseline (cycle 0): first cycle used as start")
    else:
        return MetricVerdict(metric, math.nan, math.nan, 0.0, NONE, None, math.nan, "no data")
    end = float(after.iloc[-1]) if len(after) else start
    if len(after) and math.isnan(col.iloc[-1]):
        notes.append(f"no value at the last cycle: cycle {after.index[-1]} used as end")
    growth = end - start

    x = window.index.to_numpy(dtype="float64")
    y = window.to_numpy(dtype="float64")
    n = int(y.size)
    slope = robust_slope(y, x)
    if n < th.min_cycles:
        notes.append(f"only {n} cycle(s) judged, {th.min_cycles} needed to tell growth from none")
        return MetricVerdict(metric, start, end, slope, INSUFFICIENT, None, growth, "; ".join(notes))
    diffs = np.diff(y)
    rising = float(np.mean(diffs >= 0)) if diffs.size else 0.0
    net = float(y[-1] - y[0]) if n else 0.0
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # a denormal net rise
        step_frac = float(diffs.max() / net) if n >= 2 and net > 0 else math.inf
    noise = th.noise_k * _robust_scale(y - slope * x)
    need_total = max(rule.min_total, th.slope_total_frac * slope * n, noise)
    tol = max(rule.return_tol, noise)

    # Leak-like growth: every condition below must hold.
    why_not = []
    if n < 3:
        why_not.append(f"only {n} cycles judged")
    if slope < rule.min_slope:
        why_not.append(f"slope {_fmt(slope)}/cycle < {_fmt(rule.min_slope)}")
    if growth < need_total:
        why_not.append(f"growth {_fmt(growth)} < {_fmt(need_total)}")
    if rising < th.min_rising_frac:
        why_not.append(f"only {rising:.0%} of steps non-decreasing")
    if step_frac > th.max_step_frac:
        why_not.append("one step carries most of the rise" if math.isfinite(step_frac) else "no rise over the judged cycles")
    leak_like = not why_not

    peak = float(y.max()) if n else start
    peak_cycle = int(window.idxmax()) if n else 0
    peaked = rule.peaks and rule.allow_transient and peak - start >= max(rule.min_total, noise)

    lifetime: float | None = None
    last = float(tl.iloc[-1]) if tl is not None else math.nan
    returned = tl is not None and last <= start + tol
    trend = f"{_fmt(slope)}/cycle over {n} cycles, {_fmt(growth):s} in all"

    if leak_like:
        if tl is None:
            verdict: Verdict = LEAK
            notes.append(f"grows {trend}; no timeline samples of it")
        elif returned:
            lifetime = _lifetime(tl, start + tol)
            if rule.allow_transient:
                verdict = TRANSIENT
                notes.append(f"grows {trend}, back at baseline {_fmt(lifetime)} s after the last cycle")
            else:
                verdict = NONE
                notes.append(f"grew {trend} but back at baseline in the timeline")
                lifetime = None
        elif last > start + th.stay_frac * growth:
            verdict = LEAK
            notes.append(f"grows {trend}; still +{_fmt(last - start)} at t={_fmt(float(tl.index[-1]))} s")
        else:
            verdict = TRANSIENT if rule.allow_transient else NONE
            notes.append(
                f"grows {trend}; falling in the timeline but still +{_fmt(last - start)} at "
                f"t={_fmt(float(tl.index[-1]))} s (sample longer to see it end)"
            )
    elif peaked and (end <= start + tol) and (tl is None or returned):
        verdict = TRANSIENT
        notes.append(f"peaked +{_fmt(peak - start)} at cycle {peak_cycle}, back at baseline by the last cycle")
    elif peaked and returned:
        verdict = TRANSIENT
        lifetime = _lifetime(tl, start + tol)
        notes.append(f"rose +{_fmt(peak - start)} (peak at cycle {peak_cycle}), back at baseline {_fmt(lifetime)} s after the last cycle")
    else:
        verdict = NONE
        if growth != 0 or slope != 0:
            notes.append(f"{trend}: " + "; ".join(why_not) if why_not else trend)

    if verdict == LEAK and expected:
        verdict = NORMAL
        notes.insert(0, "grows by design")
    return MetricVerdict(metric, start, end, slope, verdict, lifetime, growth, "; ".join(notes))


def _lifetime(tl: pd.Series, limit: float) -> float | None:
    """First ``t`` from which every later sample is at or below ``limit``."""
    within = tl.to_numpy(dtype="float64") <= limit
    if not within[-1]:
        return None
    bad = np.flatnonzero(~within)
    return float(tl.index[bad[-1] + 1 if bad.size else 0])


def judge(
    census: Census,
    timeline: Timeline | None = None,
    *,
    cycles_excluded: int = 0,
    expected_growth: Iterable[str] = (),
    thresholds: Thresholds | Mapping[str, Rule | Mapping[str, Any]] | None = None,
    failed_cycles: Iterable[int] = (),
) -> dict[str, MetricVerdict]:
    """A verdict for every metric column (not lifecycle/expected/latency ones).

    Cycles in ``failed_cycles`` (a step failed) are left out; with fewer than
    ``thresholds.min_cycles`` (3) judged cycles a metric is ``insufficient``.

    Definitions: ``start`` is the baseline (cycle 0; the first cycle if there is
    none), ``end`` the last cycle's value, ``growth = end - start``. The judged
    window is cycles ``1 + cycles_excluded .. N`` (NaN dropped), ``n`` its
    length, ``slope`` its Theil–Sen slope per cycle. ``noise`` is
    ``noise_k * 1.4826 * MAD`` of the residuals around the slope (0 for exact
    counts growing evenly). A rule (:class:`Rule`) comes from the metric's
    namespace.

    Rules:

    * **leak-like growth** when all hold: ``n >= 3``; ``slope >= min_slope``;
      ``growth >= max(min_total, slope_total_frac * slope * n, noise)``;
      at least ``min_rising_frac`` (60%) of consecutive differences are >= 0;
      the largest single step is at most ``max_step_frac`` (50%) of the rise
      over the window (one jump, such as a lazily built cache, is not a leak).
    * **leak**: leak-like growth and, with a timeline for the metric, its last
      value is above ``start + stay_frac * growth`` (it stays).
    * **transient**: the metric grew (leak-like growth, or for exact counts a
      peak ``>= start + max(min_total, noise)`` in the window), and then came back
      to ``start + tol`` (``tol = max(return_tol, noise)``): in the timeline
      (``lifetime_s`` = the timeline ``t`` from which it stays back) or already
      by the last cycle (``lifetime_s`` None). Leak-like growth that falls in
      the timeline without reaching the baseline is also transient, with
      ``lifetime_s`` None. RSS (``allow_transient=False``) is never transient:
      it is ``none`` when it falls back.
    * **normal**: would be ``leak`` but the metric matches ``expected_growth``
      (exact names or ``fnmatch`` patterns); note says "grows by design".
    * **none** otherwise; the note says which condition failed.

    Without a timeline (or when it lacks the metric) a leak-like metric is a
    leak. In a timeline, a missing ``type:``/``task:``/``container:`` count is 0
    if the timeline samples that family at all, else unknown.

    Default thresholds (:class:`Thresholds`): counts (types, tasks, task:,
    containers, children, fds, threads, cache_files, db_rows and unknown
    metrics) min_slope 0.5, min_total 2, tol 0.5; rss_mb 0.5 MB, 2 MB, tol 1 MB;
    gc_objects 50, 250, tol 100; tracemalloc_mb 0.25, 1, tol 0.25; cache_bytes
    1000, 4000, tol 1000; db_bytes 4096, 16384, tol 4096.

    Args:
        census: census records or a :func:`census_frame` frame.
        timeline: timeline samples, a :func:`timeline_frame` frame, or None.
        cycles_excluded: first cycles left out of the slope (warm-up).
        expected_growth: metrics that grow by design.
        thresholds: a :class:`Thresholds`, or a mapping namespace -> Rule or
            partial rule dict applied over the defaults.

    Returns:
        metric name -> :class:`MetricVerdict`, in column order.
    """
    if cycles_excluded < 0:
        raise ValueError("cycles_excluded must be >= 0")
    th = _thresholds(thresholds)
    frame = census_frame(census)
    # A failed cycle's census is real, but not a session like the others.
    failed = [c for c in failed_cycles if c != 0 and c in frame.index]
    if failed:
        frame = frame.drop(index=failed)
    tl = timeline_frame(timeline)
    patterns = tuple(expected_growth)
    out: dict[str, MetricVerdict] = {}
    for metric in frame.columns:
        if not _is_judged(metric):
            continue
        out[metric] = _judge_one(
            metric, frame[metric], _timeline_series(tl, metric),
            cycles_excluded=cycles_excluded, expected=_is_expected(metric, patterns),
            rule=th.rule_for(metric), th=th,
        )
    return out


# -- lifecycle and latency ----------------------------------------------------


def lifecycle_table(census: Census) -> dict[str, dict[str, Any]]:
    """Calls counted vs expected per lifecycle method, summed over cycles 1..N,
    and, where the census counted them, per object.

    A method with only an ``expected:`` column was never called (calls 0); one
    with only a ``lifecycle:`` column has ``expected`` None.

    Per object (only when the census has a ``lifecycle_objects:`` column for
    the method, i.e. its class is a watched type; otherwise the entry has no
    ``"objects"`` key: calls only), summed over cycles 1..N, among the
    instances created during each cycle: ``created``; ``closed`` (the method
    ran on it by the end of the cycle's settle); ``short_lived`` (it ran
    while the instance's session was still open, before its disconnect) and
    ``short_lived_calls`` (calls on those); ``of`` (session-owned: still
    unclosed at its session's disconnect) and ``ran_for`` (session-owned
    ones it ran on after the disconnect). ``ran_for < of`` means the method
    missed objects that outlived their session.

    Returns:
        ``{"Qualified.method": {"calls": int, "expected": int | None[,
        "objects": {"created", "closed", "ran_for", "of", "short_lived",
        "short_lived_calls"} (ints)]}}``, sorted by name.
    """
    frame = census_frame(census)
    rows = frame[frame.index >= 1]
    names = sorted({c.split(":", 1)[1] for c in frame.columns if c.startswith(LIFECYCLE_PREFIXES)})
    out: dict[str, dict[str, Any]] = {}

    def total(col: str) -> int | None:
        s = rows.get(col)
        return int(round(float(s.sum()))) if s is not None else None

    for name in names:
        calls = total(f"lifecycle:{name}")
        entry: dict[str, Any] = {"calls": calls if calls is not None else 0, "expected": total(f"expected:{name}")}
        if f"lifecycle_objects:{name}" in frame.columns:
            entry["objects"] = {key: total(f"{prefix}{name}") or 0 for prefix, key in _LIFECYCLE_OBJECT_KEYS}
        out[name] = entry
    return out


def lifecycle_noun(name: str) -> str:
    """What a lifecycle method's objects are called in a sentence, from the
    last word of its class name: ``"MCPClient.aclose"`` -> ``"clients"``,
    ``"ServiceContext.close"`` -> ``"contexts"``."""
    cls = name.rpartition(".")[0] or name
    words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", cls)
    word = words[-1].lower() if words else "object"
    return word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")


def split_latency(census: Census) -> pd.DataFrame:
    """Per-cycle LLM time and the backend's own time, for plotting.

    ``backend_ms = latency_end_ms - llm_ms``; where either is missing the
    recorded ``backend_ms`` column (if any) is used.

    Returns:
        Frame indexed by cycle (1..N) with float columns ``llm_ms`` and
        ``backend_ms`` (NaN where unknown).
    """
    frame = census_frame(census)
    rows = frame[frame.index >= 1]
    nan = pd.Series(np.nan, index=rows.index, dtype="float64")
    llm = rows["llm_ms"] if "llm_ms" in rows.columns else nan
    end = rows["latency_end_ms"] if "latency_end_ms" in rows.columns else nan
    backend = end - llm
    if "backend_ms" in rows.columns:
        backend = backend.where(backend.notna(), rows["backend_ms"])
    return pd.DataFrame({"llm_ms": llm, "backend_ms": backend}, index=rows.index)


def _latency_stats(s: pd.Series | None) -> dict[str, Any]:
    s = s.dropna() if s is not None else pd.Series(dtype="float64")
    if s.empty:
        return {"first": None, "last": None, "per_cycle": None, "growth": None, "verdict": NONE}
    y = s.to_numpy(dtype="float64")
    x = s.index.to_numpy(dtype="float64")
    slope = robust_slope(y, x)
    # Fitted rise over the run: one noisy first or last sample cannot fake it.
    growth = slope * float(x[-1] - x[0])
    slows = (
        y.size >= 3
        and slope > max(1.0, 0.02 * float(np.median(y)))
        and growth > max(5.0, 0.1 * float(y[0]))
        and _concordance(y) >= 0.6
    )
    return {
        "first": _num(y[0]), "last": _num(y[-1]), "per_cycle": _num(slope),
        "growth": _num(growth), "verdict": "slows" if slows else NONE,
    }


def latency_summary(census: Census) -> dict[str, Any]:
    """Does a reply get slower cycle after cycle?

    Top level: ``latency_end_ms`` (full reply). Sub-dicts of the same shape,
    only when the data is present: ``"first_reply"`` (``latency_first_ms``),
    ``"llm"`` (``llm_ms``), ``"backend"`` (see :func:`split_latency`).
    Each: ``first`` (first cycle with data), ``last``, ``per_cycle`` (Theil–Sen
    ms/cycle), ``growth`` (``per_cycle`` * cycles spanned) and ``verdict``:
    ``"slows"`` when, with at least 3 cycles, ``per_cycle > max(1 ms, 2% of
    the median)``, ``growth > max(5 ms, 10% of first)`` and at least 60% of
    (earlier, later) pairs have the later one higher; else ``"none"``.
    """
    frame = census_frame(census)
    rows = frame[frame.index >= 1]
    out = _latency_stats(rows.get("latency_end_ms"))
    if "latency_first_ms" in rows.columns and rows["latency_first_ms"].notna().any():
        out["first_reply"] = _latency_stats(rows["latency_first_ms"])
    if "latency_connect_ms" in rows.columns and rows["latency_connect_ms"].notna().any():
        out["connect"] = _latency_stats(rows["latency_connect_ms"])
    split = split_latency(frame)
    for key, col in (("llm", "llm_ms"), ("backend", "backend_ms")):
        if split[col].notna().any():
            out[key] = _latency_stats(split[col])
    return out


# -- summary ------------------------------------------------------------------


def summarize(
    census: Census,
    timeline: Timeline | None,
    *,
    expected_growth: Iterable[str] = (),
    cycles_excluded: int = 0,
    thresholds: Thresholds | Mapping[str, Rule | Mapping[str, Any]] | None = None,
    failed_cycles: Iterable[int] = (),
    allocator: Mapping[str, Any] | None = None,
    freed_types: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Every verdict, grouped, JSON-ready (``json.dumps(..., allow_nan=False)`` works).

    Returns:
        ``{"types": {Name: verdict}, "tasks": {<'tasks' verdict>,
        "by_coroutine": {qualname: verdict}}, "resources": {name: verdict}
        (those of :data:`RESOURCE_METRICS` present), "other": {metric: verdict}
        (judged metrics of no group above), "lifecycle": lifecycle_table,
        "containers": [{"path", "start", "end", "per_cycle", "verdict"}] (not
        ``none``, steepest first), "latency_ms": latency_summary, "flagged":
        [leaks then transients, by name]}``; a verdict is
        :meth:`MetricVerdict.as_dict`.
    """
    frame = census_frame(census)
    verdicts = judge(frame, timeline, cycles_excluded=cycles_excluded,
                     expected_growth=expected_growth, thresholds=thresholds, failed_cycles=failed_cycles)
    types: dict[str, Any] = {}
    by_coroutine: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    other: dict[str, Any] = {}
    containers: list[dict[str, Any]] = []
    for metric, v in verdicts.items():
        ns = namespace(metric)
        if ":" in metric and ns == "type":
            types[metric.split(":", 1)[1]] = v.as_dict()
        elif ":" in metric and ns == "task":
            by_coroutine[metric.split(":", 1)[1]] = v.as_dict()
        elif ":" in metric and ns == "container":
            # Flat ones too: "measured and flat" is not "never measured".
            d = v.as_dict()
            containers.append({"path": metric.split(":", 1)[1], "start": d["start"], "end": d["end"],
                               "per_cycle": d["per_cycle"], "verdict": v.verdict, "lifetime_s": d["lifetime_s"]})
        elif metric in RESOURCE_METRICS:
            resources[metric] = v.as_dict()
        elif metric != "tasks":
            other[metric] = v.as_dict()
    containers.sort(key=lambda c: (-(c["per_cycle"] or 0.0), c["path"]))
    tasks = verdicts["tasks"].as_dict() if "tasks" in verdicts else {}
    tasks["by_coroutine"] = by_coroutine
    flagged = sorted((m for m, v in verdicts.items() if v.verdict in (LEAK, TRANSIENT)),
                     key=lambda m: (verdicts[m].verdict != LEAK, m))
    return {
        "types": types,
        "tasks": tasks,
        "resources": {m: resources[m] for m in RESOURCE_METRICS if m in resources},
        "other": other,
        "lifecycle": lifecycle_table(frame),
        "containers": containers,
        "latency_ms": latency_summary(frame),
        "memory": memory_summary(frame, verdicts, allocator, freed_types),
        "flagged": flagged,
    }


def memory_summary(
    census: Census,
    verdicts: Mapping[str, MetricVerdict] | None = None,
    allocator: Mapping[str, Any] | None = None,
    freed_types: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """What grows that is not a live object.

    ``cyclic``: what the census's full collection freed per cycle (objects only
    a gc pass frees: reference cycles). ``cyclic`` when the median over the
    cycles is at least :data:`CYCLIC_MIN_BYTES` — freed late, not leaked —,
    ``none`` below, ``not measured`` without the counts (``collect=False``).

    ``rss``: why RSS grew, when it grew by :data:`RSS_MIN_GROWTH_MB` or more:
    ``objects`` (live objects or pymalloc blocks grew with it), ``allocator``
    (no objects grew, and asking the allocator to give freed memory back,
    ``malloc_trim(0)``, returned at least half the growth: freed memory it
    held, fragmentation or arenas), ``native`` (no objects grew and it
    returned less: memory outside Python's objects, a native library or
    buffers), ``can't tell`` (no objects grew and the allocator can't be
    asked here); ``none`` when RSS did not grow.
    """
    frame = census_frame(census)
    verdicts = verdicts or {}
    cycles = frame.loc[frame.index >= 1] if len(frame) else frame
    out: dict[str, Any] = {}
    if "gc_freed_bytes" in cycles.columns and cycles["gc_freed_bytes"].notna().any():
        b = cycles["gc_freed_bytes"].dropna()
        o = cycles["gc_freed_objects"].dropna() if "gc_freed_objects" in cycles.columns else b * 0
        o = o if len(o) else b * 0
        median = float(b.median())
        verdict = "cyclic" if median >= CYCLIC_MIN_BYTES else "none"
        note = (f"freed only by a gc pass: {median / 1024:.0f} KiB/cycle ({float(o.median()):.0f} objects/cycle; "
                f"in reference cycles, collected late, not leaked)" if verdict == "cyclic" else
                f"a gc pass freed {median / 1024:.0f} KiB/cycle (under {CYCLIC_MIN_BYTES >> 10} KiB: nothing to say)")
        out["cyclic"] = {"verdict": verdict, "bytes_per_cycle": _num(median), "objects_per_cycle": _num(o.median()),
                         "top_types": dict(sorted((freed_types or {}).items(), key=lambda kv: -kv[1])[:5]),
                         "note": note}
    else:
        out["cyclic"] = {"verdict": "not measured", "note": "no full collection before the census (collect=False)"}
    rss_values = frame["rss_mb"].dropna() if "rss_mb" in frame.columns else frame.index[:0]
    if len(rss_values) < 2:
        out["rss"] = {"verdict": "not measured", "note": "no RSS per cycle"}
        return out
    growth = float(rss_values.iloc[-1] - rss_values.iloc[0])
    grew = [m for m, v in verdicts.items() if v.verdict == LEAK and (
        namespace(m) in ("type", "container") or m in ("gc_objects", "allocated_blocks", "tracemalloc_mb"))]
    rss = {"growth_mb": round(growth, 2)}
    judged = verdicts.get("rss_mb")
    per_cycle = judged.verdict == LEAK if judged is not None else growth >= RSS_MIN_GROWTH_MB
    if not per_cycle or growth < RSS_MIN_GROWTH_MB:
        why = judged.note if judged is not None else f"under {RSS_MIN_GROWTH_MB:.0f} MiB"
        rss.update(verdict="none", note=f"RSS did not grow per cycle ({growth:+.1f} MiB over the run: {why})")
    elif grew:
        rss.update(verdict="objects", note=f"RSS grew {growth:.1f} MiB with live objects: {', '.join(sorted(grew)[:4])}")
    elif not (allocator or {}).get("available"):
        rss.update(verdict="can't tell", note=f"RSS grew {growth:.1f} MiB and no Python objects did; the allocator "
                                              "can't be asked to give freed memory back here (no glibc malloc_trim): "
                                              "held arenas can't be told from a native leak")
    else:
        returned = float(allocator["rss_before_mb"]) - float(allocator["rss_after_mb"])
        rss["returned_mb"] = round(returned, 2)
        if returned >= 0.5 * growth:
            rss.update(verdict="allocator", note=f"RSS grew {growth:.1f} MiB, no Python objects did, and "
                                                 f"malloc_trim(0) gave {returned:.1f} MiB back: freed memory the "
                                                 "allocator held (fragmentation, arenas), not a leak of objects")
        else:
            rss.update(verdict="native", note=f"RSS grew {growth:.1f} MiB, no Python objects did, and malloc_trim(0) "
                                              f"gave only {returned:.1f} MiB back: memory outside Python's objects "
                                              "(a native library, buffers)")
    out["rss"] = rss
    return out
