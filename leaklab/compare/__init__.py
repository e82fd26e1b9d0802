"""Prove the fix on your own code: two checkouts (or revisions) side by side.

    checkouts  the sides: the code given, and ``--against`` (a folder, a
               target file, an import path, or a git revision checked out
               into a temporary worktree and removed afterwards)
    engine     the same units (checklist items, the hunt's leaking
               sequences, named scenarios) on every side, interleaved, each
               in a fresh process; the before/after table
    worker     one scenario run in a process of its own

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
)

__all__ = ["FIX_VARIANTS", "AgainstError", "Change", "Comparison", "Side", "checkouts", "compare", "compare_async",
           "item_change", "prove_fix", "prove_fix_async", "scenario_changes"]
