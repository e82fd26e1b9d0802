"""The shared child-process helper (leaklab.workers), both sides of it, with
small worker modules written for the test: a JSON spec in, one JSON line out;
a failed child is said with its exit code and the tail of its stderr; a
timeout ends the child."""

from __future__ import annotations

import asyncio
import os

import psutil
import pytest

from leaklab.workers import ChildResult, child_env, run_child

ECHO = ("import sys\nfrom leaklab.workers import serve\n\n"
        "async def work(spec):\n    return {**spec, 'seen': True}\n\n"
        "sys.exit(serve(work))\n")
FAIL = "import sys\nprint('not json')\nprint('first', file=sys.stderr)\nprint('boom', file=sys.stderr)\nsys.exit(3)\n"
SLEEP = "import time\ntime.sleep(60)\n"


@pytest.fixture
def workers(tmp_path):
    for name, text in {"echo_worker": ECHO, "failing_worker": FAIL, "sleeping_worker": SLEEP}.items():
        (tmp_path / f"{name}.py").write_text(text)
    return [str(tmp_path)]


def test_a_spec_goes_in_on_stdin_and_the_last_json_line_comes_back(workers):
    done = asyncio.run(run_child("echo_worker", {"scenario": "x", "n": 2}, 60, sys_path=workers))
    assert done == ChildResult(0, {"scenario": "x", "n": 2, "seen": True})


def test_a_failed_child_gives_no_record_and_says_how_it_ended(workers):
    done = asyncio.run(run_child("failing_worker", {}, 60, sys_path=workers))
    assert done.record is None and done.returncode == 3
    assert done.failure == "exited 3: first | boom"


def test_a_timeout_ends_the_child(workers):
    before = {p.pid for p in psutil.Process().children()}
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(run_child("sleeping_worker", {}, 1.0, sys_path=workers))
    assert {p.pid for p in psutil.Process().children()} <= before


def test_the_childs_path_starts_with_the_folders_given(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", "/inherited")
    monkeypatch.chdir(tmp_path)
    assert child_env(["/first"])["PYTHONPATH"].split(os.pathsep) == ["/first", str(tmp_path), "/inherited"]
