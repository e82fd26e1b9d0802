"""Runs: what one run measured (:class:`RunResult`) and how runs are kept
(:func:`save_run`, :func:`load_run`, the software :func:`versions` they
record), with the JSON results of a hunt or a comparison
(:func:`save_json_result`) in the same runs folder."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

__all__ = [
    "DEFAULT_RUNS_DIRNAME", "BackendUnresponsive", "RunInterrupted", "RunResult", "default_runs_dir", "load_run",
    "new_run_id", "save_json_result", "save_run", "versions",
]

#: Runs are saved under this folder of the current directory, unless
#: ``runs_dir`` or the ``LEAKLAB_RUNS_DIR`` environment variable says otherwise
#: (never inside the installed package).
DEFAULT_RUNS_DIRNAME = "leaklab-runs"

if TYPE_CHECKING:
    from ..analysis import RunSummary


def default_runs_dir() -> Path:
    """``$LEAKLAB_RUNS_DIR``, else ``./leaklab-runs`` of the current directory."""
    env = os.environ.get("LEAKLAB_RUNS_DIR")
    return Path(env) if env else Path.cwd() / DEFAULT_RUNS_DIRNAME


class BackendUnresponsive(RuntimeError):
    """Several cycles in a row failed: the backend crashed or hangs."""


@dataclasses.dataclass
class RunResult:
    """What one run measured. ``records`` and ``timeline`` are plain dicts."""

    run_id: str
    target: str
    scenario: str
    faults: list[str]
    options: dict[str, Any]
    cycles: int
    records: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    expected_growth: tuple[str, ...] = ()
    errors: list[str] = dataclasses.field(default_factory=list)
    failed_cycles: list[int] = dataclasses.field(default_factory=list)
    step_timeout_s: float | None = None
    target_notes: list[str] = dataclasses.field(default_factory=list)
    orphans: dict[str, int] | None = None
    #: watched instances the cycles created that were still alive after the
    #: timeline, by type (counted whatever the slope); ``open``: of them, the
    #: sessions still registered as open (``roles.open_sessions``)
    survivors: dict[str, int] = dataclasses.field(default_factory=dict)
    survivors_open: dict[str, int] = dataclasses.field(default_factory=dict)
    #: processes the backend left running that stopping the session ended
    reaped: list[str] = dataclasses.field(default_factory=list)
    #: RSS before and after asking the allocator to give freed memory back
    #: (``{"available": False}`` where it can't be asked)
    allocator: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the commonest types a gc pass freed after the cycles, summed
    freed_types: dict[str, int] = dataclasses.field(default_factory=dict)
    #: per watched type: how long the instances the run created lived after
    #: their session ended (:func:`leaklab.analysis.lifetimes.object_lifetimes`)
    lifetimes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: per cycle, what each step sent: ``((step word, (frame types...)), ...)``
    #: (:meth:`sent_steps` gives it as JSON-ready dicts)
    sent: list[tuple[tuple[str, tuple[str, ...]], ...]] = dataclasses.field(default_factory=list)
    #: what probes measured beyond their columns, by probe (the loop's stalls, profiles...)
    details: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    interrupted: bool = False
    path: Path | None = None
    elapsed_s: float = 0.0

    def sent_steps(self) -> list[list[dict[str, Any]]]:
        """Per cycle, what each step sent: ``[{"step": word, "sent": [frame types]}]``."""
        return [[{"step": step, "sent": list(types)} for step, types in cycle] for cycle in self.sent]

    @property
    def cycles_done(self) -> int:
        return max(0, len(self.records) - 1)

    def frame(self):
        """The census as a DataFrame indexed by cycle."""
        from ..analysis import census_frame

        return census_frame(self.records)

    def timeline_frame(self):
        from ..analysis import timeline_frame

        return timeline_frame(self.timeline)

    def summary(self) -> RunSummary:
        """Verdicts per metric plus run metadata, typed (``verdict_of``,
        ``judged_cycles`` ...); it reads and serialises as the JSON-ready dict
        (``.as_dict()`` gives that dict)."""
        from ..analysis import RunSummary, summarize

        out = summarize(self.records, self.timeline, expected_growth=self.expected_growth,
                        failed_cycles=self.failed_cycles, allocator=self.allocator, freed_types=self.freed_types,
                        loop=self.details.get("loop"))
        out.update(
            run_id=self.run_id, target=self.target, scenario=self.scenario, faults=self.faults,
            cycles=self.cycles_done, orphans=self.orphans, reaped=self.reaped, errors=self.errors,
            failed_cycles=self.failed_cycles,
            judged_cycles=self.cycles_done - len(self.failed_cycles),
            survivors={"alive": dict(self.survivors), "open": dict(self.survivors_open)},
            lifetimes={k: dict(v) for k, v in self.lifetimes.items()},
            step_timeout_s=_round(self.step_timeout_s), target_notes=self.target_notes,
            interrupted=self.interrupted, elapsed_s=round(self.elapsed_s, 2),
            path=str(self.path) if self.path else None,
        )
        return RunSummary.from_dict(out)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the partial result was kept (``.result``)."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(f"run interrupted after {result.cycles_done} cycles; partial data in {result.path}")
        self.result = result


def save_json_result(result: Any, kind: str, runs_dir: Path | str | None = None) -> Path:
    """Save a hunt's or a comparison's result (anything with ``path`` and
    ``as_dict()``) as ``<runs dir>/<kind>-<stamp>-<id>/<kind>.json``, written
    atomically, its own path in it; ``result.path`` is set."""
    folder = Path(runs_dir) if runs_dir else default_runs_dir()
    folder = folder / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp, result.path = folder / f".{kind}.json.tmp", folder / f"{kind}.json"
    tmp.write_text(json.dumps(result.as_dict(), indent=2, default=str))
    tmp.replace(result.path)
    return result.path


def save_run(result: RunResult, runs_dir: Path) -> Path:
    """Write ``census.csv``, ``timeline.csv`` and ``meta.json`` atomically into a
    new folder ``runs_dir/<run_id>``; never overwrites."""
    import pandas as pd

    runs_dir.mkdir(parents=True, exist_ok=True)
    tmp = runs_dir / f".tmp-{result.run_id}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    try:
        pd.DataFrame(result.records).to_csv(tmp / "census.csv", index=False)
        pd.DataFrame(result.timeline).to_csv(tmp / "timeline.csv", index=False)
        meta = {
            "run_id": result.run_id, "target": result.target, "scenario": result.scenario,
            "faults": result.faults, "options": result.options, "cycles": result.cycles,
            "cycles_done": result.cycles_done, "interrupted": result.interrupted, "errors": result.errors,
            "elapsed_s": round(result.elapsed_s, 3), "expected_growth": list(result.expected_growth),
            "failed_cycles": result.failed_cycles, "step_timeout_s": result.step_timeout_s,
            "target_notes": result.target_notes,
            "survivors": {"alive": result.survivors, "open": result.survivors_open},
            "lifetimes": result.lifetimes,
            "details": result.details,
            "sent": result.sent_steps(),
            "versions": versions(), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        final = runs_dir / result.run_id
        while final.exists():
            final = runs_dir / f"{result.run_id}-{uuid.uuid4().hex[:4]}"
        os.rename(tmp, final)  # atomic on one filesystem; fails rather than overwrite
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_run(path: Path | str) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Read a saved run: ``(meta, records, timeline)``."""
    import pandas as pd

    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    records = pd.read_csv(path / "census.csv").to_dict("records")
    try:
        timeline = pd.read_csv(path / "timeline.csv").to_dict("records")
    except pd.errors.EmptyDataError:
        timeline = []
    return meta, records, timeline


def versions() -> dict[str, str]:
    """Python's and the packages' versions a saved run records."""
    out = {"python": platform.python_version()}
    for pkg in ("leaklab", "fastapi", "uvicorn", "websockets", "openai", "mcp", "objgraph", "pympler", "pandas"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
