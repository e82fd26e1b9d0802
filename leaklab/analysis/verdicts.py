"""Verdicts: does a metric grow per session, and does it stay?

:func:`judge` gives every judged census column a :class:`MetricVerdict`
(a :class:`~leaklab.metrics.Verdict` and why); :class:`Thresholds` holds
its knobs, one :class:`Rule` per metric namespace.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from .. import metrics
from ..metrics import Kind, Verdict, namespace
from .frames import (
    GC_FREED_COLUMNS,
    KEY_COLUMNS,
    LATENCY_COLUMNS,
    LOOP_COLUMNS,
    Census,
    Timeline,
    census_frame,
    is_lifecycle,
    json_number,
    timeline_frame,
)

__all__ = [
    "COUNT_RULE",
    "INSUFFICIENT",
    "LEAK",
    "NONE",
    "NORMAL",
    "TRANSIENT",
    "MetricVerdict",
    "Rule",
    "Thresholds",
    "concordance",
    "judge",
    "robust_slope",
]

# The verdicts by their old module-level names (aliases of the enum's members).
LEAK = Verdict.LEAK
TRANSIENT = Verdict.TRANSIENT
NORMAL = Verdict.NORMAL
NONE = Verdict.NONE
#: Too few judged cycles to tell growth from none (failed cycles do not count).
INSUFFICIENT = Verdict.INSUFFICIENT

# Zero-fill families in a timeline: the sampler collects the whole family or none
# of it ("tasks" is the task census's total, always sampled with the per-coroutine counts).
_FAMILY: Mapping[Kind, tuple[str, ...]] = MappingProxyType({
    Kind.TYPE: (Kind.TYPE.value,), Kind.TASK: (Kind.TASK.value, "tasks"), Kind.CONTAINER: (Kind.CONTAINER.value,),
})


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


def concordance(y: np.ndarray) -> float:
    """Share of pairs (earlier, later) where the later value is strictly higher."""
    if y.size < 2:
        return 0.0
    i, j = np.triu_indices(y.size, k=1)
    return float(np.mean(y[j] > y[i]))


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


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


@dataclass(frozen=True)
class MetricVerdict:
    """What :func:`judge` concluded about one metric.

    Attributes:
        metric: column name.
        start: baseline (cycle 0) value.
        end: value at the last cycle.
        per_cycle: robust (Theil–Sen) slope over the judged cycles.
        verdict: a :class:`~leaklab.metrics.Verdict` (``leak``, ``transient``,
            ``normal``, ``none`` or ``insufficient``); ``as_dict`` writes its value.
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

    def __post_init__(self) -> None:
        # A plain string ("leak", as a saved summary has it) becomes the enum.
        object.__setattr__(self, "verdict", Verdict(self.verdict))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], metric: str | None = None) -> MetricVerdict:
        """The verdict of :meth:`as_dict` (or a summary's container entry,
        which has no ``metric``, ``growth`` or ``note``: give ``metric``)."""
        start, end = _float(d.get("start")), _float(d.get("end"))
        growth = d.get("growth", end - start)
        return cls(metric if metric is not None else str(d.get("metric", "")), start, end, _float(d.get("per_cycle")),
                   Verdict(d["verdict"]), d.get("lifetime_s"), _float(growth), str(d.get("note") or ""))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> None, plain Python numbers)."""
        return {
            "metric": self.metric,
            "start": json_number(self.start),
            "end": json_number(self.end),
            "per_cycle": json_number(self.per_cycle),
            "verdict": self.verdict.value,
            "lifetime_s": json_number(self.lifetime_s),
            "growth": json_number(self.growth),
            "note": self.note,
        }


def _is_judged(metric: str) -> bool:
    return (metric not in KEY_COLUMNS and metric not in LATENCY_COLUMNS and metric not in GC_FREED_COLUMNS
            and metric not in LOOP_COLUMNS and not is_lifecycle(metric) and not metrics.is_kind(metric, Kind.TIME))


def _is_expected(metric: str, patterns: Iterable[str]) -> bool:
    return any(metric == p or fnmatch.fnmatchcase(metric, p) for p in patterns)


def _timeline_series(tl: pd.DataFrame, metric: str) -> pd.Series | None:
    """The metric's timeline, or None when the timeline says nothing about it."""
    if tl.empty:
        return None
    if metric in tl.columns:
        s = tl[metric].dropna()
        return s if len(s) else None
    kind = metrics.kind_of(metric)
    if kind in _FAMILY:
        # The sampler reports only what exists: if it sampled this family at
        # all, a missing instance count is 0. If it did not, we know nothing
        # (calling a leak "back to 0" would be the worse mistake).
        if any(namespace(c) in _FAMILY[kind] for c in tl.columns):
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


