"""Functions' time before and after: per unit run on both sides, the top
functions' ms per cycle (first, last, ms/cycle more each cycle) on each
side and what their verdict did (``slows`` -> ``none``: fixed).

Pure functions of the runs' summaries (their ``time``:
:func:`~leaklab.analysis.time.time_summary`); tested on synthetic ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import metrics
from ..metrics import Verdict

__all__ = ["function_change", "side_summaries", "time_changes", "unit_time_changes"]

#: Functions compared per run: those that slow on either side, then the
#: costliest of the last cycle on either side, up to this many.
TOP_FUNCTIONS = 5
_STATS = ("first", "last", "per_cycle", "verdict")


def function_change(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> metrics.Change:
    """What happened to a function's time: ``fixed`` (slows, then not),
    ``worse`` (slows only after), ``unchanged`` (the same verdict), ``can't
    tell`` (not sampled on a side)."""
    if not before or not after:
        return metrics.Change.CANT_TELL
    b, a = before.get("verdict") == Verdict.SLOWS, after.get("verdict") == Verdict.SLOWS
    if b and not a:
        return metrics.Change.FIXED
    if a and not b:
        return metrics.Change.WORSE
    return metrics.Change.UNCHANGED


def time_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
                 top: int = TOP_FUNCTIONS) -> list[dict[str, Any]]:
    """The top functions of two runs' ``time`` summaries, before -> after.

    Returns:
        One dict per function: ``{"function", "before": stats | None,
        "after": stats | None, "verdicts": "slows -> none", "change"}``
        (stats: ``first``, ``last``, ``per_cycle`` in ms, ``verdict``,
        ``listed``; a side that sampled the loop but does not list the
        function: ``none``, numbers ``None``, as every function that slows
        is listed; ``None``: that side did not sample the loop); those that
        slow on either side first. ``[]`` when neither side sampled the loop.
    """
    fb, fa = dict((before or {}).get("functions") or {}), dict((after or {}).get("functions") or {})
    if not fb and not fa:
        return []
    slow = [*((before or {}).get("slows") or []), *((after or {}).get("slows") or [])]
    costly = sorted({*fb, *fa}, key=lambda k: -max((fb.get(k) or {}).get("last") or 0.0,
                                                   (fa.get(k) or {}).get("last") or 0.0))
    keys = list(dict.fromkeys(slow))
    keys += [k for k in costly if k not in keys][:max(0, top - len(keys))]
    out = []
    for key in keys:
        sides = [_side(f, key) for f in (fb, fa)]
        verdicts = " -> ".join(("not sampled" if v is None else str(v["verdict"]) if v["listed"]
                                else f"{v['verdict']} (below its top functions)") for v in sides)
        out.append({"function": key, "before": sides[0], "after": sides[1], "verdicts": verdicts,
                    "change": function_change(*sides).value})
    return out


def _side(functions: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """One side's stats of a function (``listed``: among the side's listed
    functions). A side that sampled the loop lists every function that
    slows: one it does not list does not slow there (``none``, its numbers
    unknown). ``None``: the side did not sample the loop."""
    if not functions:
        return None
    v = functions.get(key)
    if v is None:
        return {**{s: None for s in _STATS}, "verdict": Verdict.NONE.value, "listed": False}
    return {**{s: v.get(s) for s in _STATS}, "listed": True}


def unit_time_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, list[dict]]:
    """Per run of a unit (a scenario's one run ``""``, an item's ``main``,
    ``control``...), :func:`time_changes` of its two sides' summaries; runs
    with no loop sampled on either side are left out.

    Args:
        before, after: run name -> that side's run summary.
    """
    out = {}
    for run in dict.fromkeys([*(before or {}), *(after or {})]):
        rows = time_changes(((before or {}).get(run) or {}).get("time"), ((after or {}).get(run) or {}).get("time"))
        if rows:
            out[run] = rows
    return out


def side_summaries(kind: str, unit: str, side: str, outcomes: Mapping[str, Mapping[str, Any]],
                   runs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Run name -> summary of one unit on one side: an item's runs (its
    outcome's record), a scenario's one run (``""``)."""
    if kind == "item":
        outcome = (outcomes.get(unit) or {}).get(side)
        record = getattr(outcome, "record", None) or {}
        return {k: v for k, v in (record.get("runs") or {}).items() if isinstance(v, Mapping)}
    summary = ((runs.get(unit) or {}).get(side) or {}).get("summary")
    return {"": summary} if isinstance(summary, Mapping) else {}
