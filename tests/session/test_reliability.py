"""Clean shutdown on every path: normal end, Ctrl-C mid-cycle, a backend that
crashes or hangs; partial data kept; nothing left behind; clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from leaklab.serving import ServerStartError
from leaklab.session import BackendUnresponsive, LeakSession, run_async
from tests.conftest import run_async as run_on_loop

ROOT = Path(__file__).resolve().parents[2]


def test_backend_crashing_on_connect_keeps_partial_data(tmp_path):
    async def go():
        session = LeakSession("tests.apps:crash_on_connect", runs_dir=tmp_path, progress=False, step_timeout_s=3)
        await session.start()
        try:
            with pytest.raises(BackendUnresponsive, match="3 cycles in a row failed"):
                await session.run("open-close", 10)
        finally:
            orphans = await session.stop()
        return orphans

    orphans = run_on_loop(go(), allow_loop_errors=True)
    assert orphans == {"children": 0, "threads": 0, "listening_ports": 0}
    (run_dir,) = tmp_path.iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["cycles_done"] == 3 and len(meta["errors"]) == 3


def test_backend_hanging_on_connect_times_out_and_shuts_down(tmp_path):
    started = time.monotonic()

    async def go():
        session = LeakSession("tests.apps:hang_on_connect", runs_dir=tmp_path, progress=False, step_timeout_s=0.5,
                              shutdown_timeout_s=2)
        await session.start()
        try:
            with pytest.raises(BackendUnresponsive):
                await session.run("open-close", 5)
        finally:
            orphans = await session.stop()
        return orphans

    orphans = run_on_loop(go(), allow_loop_errors=True)
    assert orphans["children"] == 0 and orphans["listening_ports"] == 0
    assert time.monotonic() - started < 60


def test_backend_failing_start_up_is_a_clear_error():
    with pytest.raises(ServerStartError, match="start-up failed"):
        run_on_loop(run_async("tests.apps:crash_on_startup", "open-close", 1, runs_dir=False, progress=False),
                    allow_loop_errors=True)


def test_ctrl_c_mid_cycle_keeps_partial_data_and_leaves_nothing(tmp_path):
    # SIGTERM: the CLI raises SIGINT for it, so both of its handlers run (a
    # SIGINT alone stops `leaklab serve` and a report build: cli/test_serve.py,
    # tests/report/test_build.py)
    sig = signal.SIGTERM
    # GIVEN a long run in a subprocess
    proc = subprocess.Popen(
        [sys.executable, "-m", "leaklab.cli", "run", "--scenario", "chat", "--cycles", "200",
         "--runs-dir", str(tmp_path), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        # WHEN Ctrl-C arrives while MCP servers run (mid-cycle)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not psutil.Process(proc.pid).children(recursive=True):
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "no cycle started"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # also closes the pipes
    # THEN it exits 130, says where the partial data is, and leaves no process
    assert proc.returncode == 130, err
    assert "interrupted" in err and "partial data in" in err
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
    (run_dir,) = tmp_path.iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["interrupted"] is True and meta["cycles_done"] < 200
