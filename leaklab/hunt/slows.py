"""Slow-downs a screened sequence shows, and whether the checklist covers them.

A run's ``time`` summary lists the functions whose time per cycle grows
(``slows``). Each is a hunt finding of kind ``slows``; it is **on the
checklist** when the stored state it scales with (the census column
:func:`~leaklab.analysis.time.explain_slow` finds growing with it most
closely) is a signal some item reads through the target's roles (a function
that scales with the history store's rows is C5's when the target declares
its history store), else **not on the checklist**. A reply or connect time
is no stored state: a function that only scales with one is on no item.

Nothing here names a backend: the items' signals are read through roles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import metrics
from ..analysis.frames import LATENCY_COLUMNS, LOOP_COLUMNS, Census
from ..analysis.time import explain_slow
from ..checklist.items import ITEMS, signal_columns
from ..metrics import Kind
from ..probes.stacks import owner_kind

__all__ = ["covering_items", "screen_slow", "slow_signature"]


def covering_items(scales_with: str | None, roles: Mapping[str, Any]) -> list[str]:
    """The items whose signals (read through ``roles``) include the stored
    state metric ``scales_with``; ``[]`` for none, for no metric, or for a
    timing (a latency, the loop's, a function's time)."""
    if not scales_with or scales_with in LATENCY_COLUMNS or scales_with in LOOP_COLUMNS \
            or metrics.is_kind(scales_with, Kind.TIME):
        return []
    return [item.id for item in ITEMS if signal_columns(item, roles, [scales_with], limit=1)]


def slow_signature(time: Mapping[str, Any], census: Census, roles: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The functions that slow in a run, steepest first, each ``{"function",
    "file", "line", "owner", "first", "last", "per_cycle" (ms/cycle),
    "scales_with" (a census column or ``None``), "items"}``
    (:func:`covering_items`).

    Args:
        time: the run summary's ``time`` (``time_summary``).
        census: the run's records (for what each function scales with).
        roles: the target's roles (``Roles.as_dict()``).
    """
    out = []
    functions = time.get("functions") or {}
    for key in time.get("slows") or []:
        info = functions.get(key) or {}
        explained = explain_slow(census, time, key) or {}
        scales = (explained.get("scales_with") or {}).get("metric")
        out.append({"function": key, "file": info.get("file"), "line": info.get("line"), "owner": info.get("owner"),
                    "first": info.get("first"), "last": info.get("last"), "per_cycle": info.get("per_cycle"),
                    "scales_with": scales, "items": covering_items(scales, roles)})
    return out


def screen_slow(time: Mapping[str, Any], census: Census, roles: Mapping[str, Any]) -> dict[str, Any] | None:
    """The one slow-down a screened run is a finding for: the steepest
    function of the app's own code that slows, else the steepest that slows
    (a library's), with the others that slow in ``"also"`` (callers and
    callees of one growing call share its growth: one finding, not one per
    frame); ``None`` when nothing slows."""
    slows = slow_signature(time, census, roles)
    if not slows:
        return None
    mine = [s for s in slows if owner_kind(str(s.get("owner") or "")) == "yours"]
    first = (mine or slows)[0]
    return {**first, "also": [s["function"] for s in slows if s is not first]}
