"""One scenario run in a process of its own (``python -m
leaklab.compare.worker``): reads a JSON spec on stdin (how to resolve the
target, the scenario, cycles, session settings), prints one JSON line on
stdout: the run's summary, its per-cycle records and the retention groups of
its survivors. SIGTERM or Ctrl-C shuts the backend down first
(:func:`leaklab.workers.serve`)."""

from __future__ import annotations

import sys
from typing import Any

from ..workers import serve


async def run_unit(spec: dict[str, Any]) -> dict[str, Any]:
    """The scenario on a fresh backend: summary, records, survivors' groups."""
    from ..session import LeakSession

    kwargs = dict(spec.get("session") or {})
    session = LeakSession(spec.get("target") or "reference", app_dir=spec.get("app_dir"),
                          target_file=spec.get("target_file"), faults=spec.get("faults"), options=spec.get("options"),
                          watch=spec.get("watch") or None, runs_dir=False, progress=False, **kwargs)
    await session.start()
    try:
        result = await session.run(spec["scenario"], int(spec["cycles"]))
        summary = result.summary()
        groups: list[dict[str, Any]] = []
        if (summary.get("survivors") or {}).get("alive"):
            groups = session.explain().as_dict().get("groups", [])
        roles = session.target.roles.as_dict()
        name = session.target.name
    finally:
        orphans = await session.stop()
    return {"scenario": spec["scenario"], "target": name, "summary": summary, "records": result.records,
            "groups": groups, "roles": roles, "orphans": orphans, "errors": result.errors[:5]}


async def run_unit_or_error(spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_unit`, or a record that names its error: the other side still runs."""
    try:
        return await run_unit(spec)
    except Exception as exc:  # said in the record: the other side still runs
        return {"scenario": spec.get("scenario"), "error": f"{type(exc).__name__}: {exc}"}


def main() -> int:
    return serve(run_unit_or_error)


if __name__ == "__main__":
    sys.exit(main())
