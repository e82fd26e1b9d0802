"""Find the leaking lifecycle without being told: scenario hunt.

    candidates  step lists generated from the protocol's steps, short first
    search      run and rank them on one live backend (each against its own
                baseline), minimise what leaks, confirm it on a fresh backend,
                explain it, map it to the checklist (or say it is not on it)

``leaklab hunt`` and :func:`hunt_async` are the same code path; the printed
sequences replay as written with ``leaklab run --scenario '<sequence>'``.
"""

from .candidates import candidates, essential_steps, trigger_steps
from .search import (
           Finding,
           HuntResult,
           checklist_rows,
           hunt,
           hunt_async,
           leak_signature,
           load_findings,
)

__all__ = ["Finding", "HuntResult", "candidates", "checklist_rows", "essential_steps", "hunt", "hunt_async",
           "leak_signature", "load_findings", "trigger_steps"]
