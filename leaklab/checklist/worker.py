"""One checklist experiment in a process of its own (``python -m
leaklab.checklist.worker``): reads a JSON spec on stdin (how to resolve the
target, the item, session settings), prints the experiment's record as one
JSON line on stdout. SIGTERM or Ctrl-C shuts the backend down first."""

from __future__ import annotations

import asyncio
import json
import logging
import sys


def main() -> int:
    from .._platform import stop_as_interrupt

    stop_as_interrupt()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    spec = json.loads(sys.stdin.read())
    from .engine import run_experiment

    session = dict(spec.get("session") or {})
    outcome = asyncio.run(run_experiment(
        spec["item"], spec.get("target") or "reference", app_dir=spec.get("app_dir"),
        target_file=spec.get("target_file"), faults=spec.get("faults"), options=spec.get("options"),
        watch=spec.get("watch") or None, cycles=spec.get("cycles"), **session,
    ))
    print(json.dumps(outcome.record, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
