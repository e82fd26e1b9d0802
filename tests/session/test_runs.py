"""Runs are kept: saved atomically in a folder of their own (never
overwritten), read back as they were; a hunt's or comparison's JSON result
saved next to them; a run's options are its own (the session is left as it
was)."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from leaklab import metrics
from leaklab.metrics import Kind
from leaklab.session import (
    LeakSession,
    RunOptions,
    RunResult,
    load_run,
    run,
    run_async,
    save_json_result,
    save_run,
    versions,
)


def a_result(run_id: str = "20260101-000000-abcdef", timeline: bool = True) -> RunResult:
    ctx = metrics.name(Kind.TYPE, "ServiceContext")
    records = [{"cycle": c, "t": 0.5 * c, "rss_mb": 100.0 + c, ctx: float(c)} for c in range(4)]
    samples = [{"t": 0.25 * i, "rss_mb": 103.0, ctx: 3.0} for i in range(3)] if timeline else []
    return RunResult(run_id=run_id, target="reference", scenario="chat", faults=["C1"], options={}, cycles=3,
                     records=records, timeline=samples, errors=["cycle 2: boom"], failed_cycles=[2],
                     survivors={"ServiceContext": 3})


def test_a_saved_run_reads_back_as_it_was(tmp_path: Path) -> None:
    # GIVEN a run's result WHEN saved and loaded
    result = a_result()
    path = save_run(result, tmp_path)
    meta, records, timeline = load_run(path)
    # THEN its folder holds the census, the timeline and the metadata, nothing else
    assert path == tmp_path / result.run_id
    assert {p.name for p in path.iterdir()} == {"census.csv", "timeline.csv", "meta.json"}
    assert records == result.records and timeline == result.timeline
    assert meta["scenario"] == "chat" and meta["cycles_done"] == 3 and meta["failed_cycles"] == [2]
    assert meta["survivors"] == {"alive": {"ServiceContext": 3}, "open": {}}
    assert meta["versions"] == versions() and "python" in meta["versions"]


def test_a_run_is_never_overwritten_and_an_empty_timeline_reads_back_empty(tmp_path: Path) -> None:
    # GIVEN two runs with the same id, the second without a timeline
    first = save_run(a_result(), tmp_path)
    second = save_run(a_result(timeline=False), tmp_path)
    # THEN the second went to a folder of its own, and no temporary folder is left
    assert first != second and first.exists() and second.name.startswith(first.name)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])
    assert load_run(second)[2] == []


def test_a_json_result_is_saved_atomically_with_its_own_path(tmp_path: Path) -> None:
    @dataclasses.dataclass
    class Found:
        path: Path | None = None

        def as_dict(self) -> dict:
            return {"path": str(self.path), "found": 1}

    # GIVEN a hunt-like result WHEN saved
    found = Found()
    path = save_json_result(found, "hunt", tmp_path)
    # THEN it is <kind>-<stamp>-<id>/<kind>.json, its path set and written in it
    assert path == found.path and path.name == "hunt.json" and path.parent.name.startswith("hunt-")
    assert json.loads(path.read_text()) == {"path": str(path), "found": 1}
    assert [p.name for p in path.parent.iterdir()] == ["hunt.json"]


def test_run_options_are_frozen_and_the_session_keeps_its_own(tmp_path: Path) -> None:
    # GIVEN a session built with keyword arguments
    session = LeakSession("reference", runs_dir=tmp_path, settle_s=0.2, timeline_s=1.0, progress=False)
    # THEN they are its default options, read-only
    assert session.options == RunOptions(settle_s=0.2, timeline_s=1.0, progress=False, runs_dir=tmp_path)
    assert (session.settle_s, session.timeline_s, session.runs_dir) == (0.2, 1.0, tmp_path)
    with pytest.raises(AttributeError):
        session.timeline_s = 3.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.options.timeline_s = 3.0  # type: ignore[misc]
    # a run's own options are a copy; the session's stay as they were
    quick = dataclasses.replace(session.options, timeline_s=0.5, runs_dir=False)
    assert quick.runs_dir is None and session.options.timeline_s == 1.0
    with pytest.raises(ValueError, match="step_timeout_s must be a positive number"):
        RunOptions(step_timeout_s=0)
    assert "options" in inspect.signature(LeakSession.run).parameters


def test_the_sync_run_shows_its_parameters() -> None:
    # GIVEN the sync entry point THEN help() shows run_async's and the session's parameters
    params = inspect.signature(run).parameters
    assert not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values())
    session_kwargs = [n for n, p in inspect.signature(LeakSession).parameters.items()
                      if p.kind is p.KEYWORD_ONLY and n not in ("probes",)]
    run_async_params = [n for n, p in inspect.signature(run_async).parameters.items() if p.kind is not p.VAR_KEYWORD]
    assert set(session_kwargs) | set(run_async_params) <= set(params)
