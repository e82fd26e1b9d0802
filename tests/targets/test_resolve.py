"""One resolver for every target and entry point (the same flags on every
command: tests/cli/test_usage.py); runs saved in the current directory; step
timeouts that fit the backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from leaklab.session import LeakSession, default_runs_dir
from leaklab.targets import AttachError, Target, UnknownTargetError, resolve_target
from tests.conftest import run_async

ROOT = Path(__file__).resolve().parents[2]


def test_resolver_takes_names_files_targets_and_says_what_is_valid(tmp_path):
    ref = resolve_target("reference", faults="C8", watch={"Extra": "Extra"})
    assert isinstance(ref, Target) and ref.faults == {"C8"} and "Extra" in ref.watched_types
    # a Target is taken as it is (the checklist, the guard and the session all pass one)
    assert resolve_target(ref) is ref
    by_file = resolve_target(target_file=ROOT / "data" / "targets" / "reference.toml")
    assert by_file.name == "leaklab.backend:create_app"
    with pytest.raises(UnknownTargetError, match="unknown target 'nope'; valid: reference, olv"):
        resolve_target("nope")
    with pytest.raises(UnknownTargetError, match="app_dir goes with --target olv or a target file"):
        resolve_target("reference", app_dir=tmp_path)
    with pytest.raises(AttachError, match=r"no app dir given \(--app-dir DIR on the command line, app_dir= in Python\)"):
        resolve_target("olv")


def test_runs_go_to_the_current_directory_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("LEAKLAB_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_runs_dir() == tmp_path / "leaklab-runs"
    assert LeakSession("reference").runs_dir == tmp_path / "leaklab-runs"
    monkeypatch.setenv("LEAKLAB_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert LeakSession("reference").runs_dir == tmp_path / "elsewhere"
    assert LeakSession("reference", runs_dir=False).runs_dir is None
    # never inside the installed package
    import leaklab

    assert Path(leaklab.__file__).parent not in default_runs_dir().parents


def test_step_timeout_derived_from_the_connects_and_a_clear_error_when_too_short(tmp_path):
    async def go(step_timeout_s):
        session = LeakSession("tests.apps:slow_greeting", runs_dir=False, progress=False, timeline_s=0.2,
                              settle_s=0.05, step_timeout_s=step_timeout_s)
        await session.start()
        try:
            return await session.run("open-close", 2)
        finally:
            await session.stop()

    # GIVEN a backend that greets 1 s after accepting
    # WHEN the step timeout is derived THEN every cycle passes, and the
    # bound after the first connect is at least 4x the slowest connect
    derived = run_async(go(None), allow_loop_errors=True)
    assert derived.errors == []
    assert derived.summary()["judged_cycles"] == 2
    assert derived.step_timeout_s >= 10
    assert min(r["latency_connect_ms"] for r in derived.records[1:]) >= 900
    # WHEN it is set shorter than the greeting THEN the cycles fail, counted,
    # and the error says which flag raises it
    short = run_async(go(0.5), allow_loop_errors=True)
    s = short.summary()
    assert s["failed_cycles"] == [1, 2] and s["judged_cycles"] == 0
    assert "raise it with --step-timeout SECONDS" in short.errors[0]
