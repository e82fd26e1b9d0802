"""``leaklab serve``: prints the URL, serves, stops on SIGINT with nothing left."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

import psutil

from leaklab.driver.client import SessionClient
from tests.conftest import run_async


def test_serve_prints_url_serves_and_stops_on_sigint():
    # GIVEN `leaklab serve` in a subprocess
    proc = subprocess.Popen(
        [sys.executable, "-m", "leaklab.cli", "serve", "--faults", "none", "--option", "heavy_init_s=0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        url = next(line.strip() for line in lines if line.startswith("ws://"))
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/client-ws", url)

        # WHEN a tab chats with it
        async def chat():
            async with SessionClient(url, timeout_s=30) as tab:
                return await tab.text_turn("hi", timeout_s=30)

        timing = run_async(chat())
        assert timing.chain_end_s is not None
        children = psutil.Process(proc.pid).children(recursive=True)
        # THEN SIGINT stops it with exit 0 and no child process left
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped" in out
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # also closes the pipes


def test_serve_unknown_fault_lists_valid_ids():
    result = subprocess.run(
        [sys.executable, "-m", "leaklab.cli", "serve", "--faults", "C10"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "unknown fault 'C10'" in result.stderr and "C9" in result.stderr and "all" in result.stderr
