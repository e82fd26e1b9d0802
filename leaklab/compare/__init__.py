"""Prove the fix on your own code: two checkouts (or revisions) side by side.

    checkouts  the sides: the code given, and ``--against`` (a folder, a
               target file, an import path, or a git revision checked out
               into a temporary worktree and removed afterwards)
    engine     the same units (checklist items, the hunt's leaking
               sequences, named scenarios) on every side, interleaved, each
               in a fresh process; the before/after table
    worker     one unit (a scenario, or a checklist item) run in a process
               of its own, under the line tracer when the change has lines
    hunks      the change: the app's Python files that differ, split into
               hunks, each in its enclosing function (difflib, ast)
    linetrace  which of a few files' lines ran, how often (sys.monitoring on
               3.12+, a scoped trace function before)
    fixlines   per unit, each hunk ``ran N×`` or ``never ran`` and why; the
               words put first where a verdict alone leaves you guessing

``leaklab compare``, :func:`compare_async`, notebook 04 and the report's
"Before and after" section are one code path; :func:`prove_fix_async` (the
reference's planted-fault variants) runs through it too.
"""

from .checkouts import AgainstError, Side, checkouts
from .engine import (
    FIX_VARIANTS,
    Change,
    Comparison,
    compare,
    compare_async,
    item_change,
    prove_fix,
    prove_fix_async,
    scenario_changes,
    the_change,
)
from .fixlines import FixChange
from .hunks import Hunk
from .linetrace import LineTracer

__all__ = ["FIX_VARIANTS", "AgainstError", "Change", "Comparison", "FixChange", "Hunk", "LineTracer", "Side", "checkouts",
           "compare", "compare_async", "item_change", "prove_fix", "prove_fix_async", "scenario_changes", "the_change"]
