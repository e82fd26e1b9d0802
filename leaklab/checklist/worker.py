"""One checklist experiment in a process of its own (``python -m
leaklab.checklist.worker``): reads a JSON spec on stdin (how to resolve the
target, the item, session settings), prints the experiment's record as one
JSON line on stdout. SIGTERM or Ctrl-C shuts the backend down first
(:func:`leaklab.workers.serve`)."""

from __future__ import annotations

import sys
from typing import Any

from ..workers import serve


async def run_item(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's experiment on a fresh backend: its record."""
    from .engine import run_experiment

    session = dict(spec.get("session") or {})
    outcome = await run_experiment(
        spec["item"], spec.get("target") or "reference", app_dir=spec.get("app_dir"),
        target_file=spec.get("target_file"), faults=spec.get("faults"), options=spec.get("options"),
        watch=spec.get("watch") or None, cycles=spec.get("cycles"), **session,
    )
    return outcome.record


def main() -> int:
    return serve(run_item)


if __name__ == "__main__":
    sys.exit(main())
