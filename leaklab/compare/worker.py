"""One unit of a comparison in a process of its own (``python -m
leaklab.compare.worker``): reads a JSON spec on stdin (how to resolve the
target, the scenario, cycles, session settings: the client among them),
prints one JSON line on stdout: the run's summary, its per-cycle records, the
retention groups of its survivors and what opened its tabs (``client``,
``browser_tabs``). SIGTERM or Ctrl-C shuts the backend down first
(:func:`leaklab.workers.serve`).

A spec with ``"item"`` runs that checklist experiment instead (its record,
as :mod:`leaklab.checklist.worker` prints it). A spec with ``"trace"`` (file
-> changed lines and their functions: :func:`~.fixlines.trace_plan`) runs
the unit under a :class:`~.linetrace.LineTracer` over those files only; the
record's ``"fix_trace"`` says which lines ran and how often."""

from __future__ import annotations

import sys
import time
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
        tabs = session.browser.tabs_opened if session.browser is not None else None
    finally:
        orphans = await session.stop()
    return {"scenario": spec["scenario"], "target": name, "summary": summary, "records": result.records,
            "groups": groups, "roles": roles, "orphans": orphans, "errors": result.errors[:5],
            "client": session.client, "browser_tabs": tabs}


async def run_unit_or_error(spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_unit` (or the checklist item), under the spec's line
    tracer if it has one; or a record that names its error: the other side
    still runs."""
    from .linetrace import LineTracer

    tracer = LineTracer(spec.get("trace") or {}, spec.get("trace_mechanism"))
    started = time.monotonic()
    tracer.start()
    try:
        if spec.get("item"):
            from ..checklist.worker import run_item

            record = await run_item(spec)
        else:
            record = await run_unit(spec)
    except Exception as exc:  # said in the record: the other side still runs
        record = {"scenario": spec.get("scenario"), "error": f"{type(exc).__name__}: {exc}"}
        if spec.get("item"):
            record = {"item": spec["item"], "roles": {}, "runs": {}, "facts": {}, "error": record["error"]}
    finally:
        tracer.stop()
    if spec.get("trace"):
        record["fix_trace"] = {"mechanism": tracer.mechanism, "files": tracer.result(),
                               "elapsed_s": round(time.monotonic() - started, 2)}
    return record


def main() -> int:
    return serve(run_unit_or_error)


if __name__ == "__main__":
    sys.exit(main())
