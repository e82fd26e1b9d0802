"""What differs on Windows, simulated on this machine (no Windows machine is
available): symbolic links refused, no ``num_fds``, no ``SIGTERM`` and no
process groups, and an event loop that can't start subprocesses (Windows'
selector loop, which a Jupyter kernel may run)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import types

import psutil
import pytest

from leaklab import _platform
from leaklab.checklist import in_child

pytestmark = pytest.mark.lowest_env  # the platform module on the users' Python


def _refuse(*args, **kwargs):
    raise OSError(22, "A required privilege is not held by the client", None, 1314)


def test_a_refused_link_becomes_a_junction_on_windows_a_hard_link_or_a_copy(tmp_path, monkeypatch):
    src = tmp_path / "src"
    (src / "models").mkdir(parents=True)
    (src / "models" / "m.bin").write_bytes(b"x" * 10)
    (src / "conf.yaml").write_text("a: 1\n")
    monkeypatch.setattr(os, "symlink", _refuse)
    out = tmp_path / "out"
    out.mkdir()
    # no junctions here: a small folder is copied, a file hard-linked
    assert _platform.link_or_copy(src / "models", out / "models") == "copy"
    assert (out / "models" / "m.bin").read_bytes() == b"x" * 10 and not (out / "models").is_symlink()
    assert _platform.link_or_copy(src / "conf.yaml", out / "conf.yaml") == "hardlink"
    # a folder too large to copy is left out, and said so
    assert _platform.link_or_copy(src / "models", out / "big", copy_limit_bytes=5) == "skipped"
    assert not (out / "big").exists()
    # where hard links are refused too, a copy
    monkeypatch.setattr(os, "link", _refuse)
    assert _platform.link_or_copy(src / "conf.yaml", out / "c2.yaml") == "copy"
    # on Windows, a folder is a directory junction (no privilege needed)
    made = []
    fake = types.SimpleNamespace(CreateJunction=lambda s, d: made.append((s, d)) or os.mkdir(d))
    monkeypatch.setitem(sys.modules, "_winapi", fake)
    assert _platform.link_or_copy(src / "models", out / "j") == "junction"
    assert made == [(str(src / "models"), str(out / "j"))]


def test_handles_are_counted_where_file_descriptors_do_not_exist(monkeypatch):
    from leaklab.probes.process import process_snapshot

    monkeypatch.delattr(psutil.Process, "num_fds", raising=False)
    monkeypatch.setattr(psutil.Process, "num_handles", lambda self: 321, raising=False)
    assert process_snapshot(count_gc_objects=False).fds == 321
    monkeypatch.delattr(psutil.Process, "num_handles")
    assert process_snapshot(count_gc_objects=False).fds == -1  # neither: said as not measured


def test_no_sigterm_and_no_process_groups(monkeypatch):
    from leaklab import cli

    monkeypatch.delattr(signal, "SIGTERM")
    monkeypatch.delattr(os, "killpg")
    monkeypatch.delattr(os, "setsid")
    monkeypatch.setattr(_platform, "IS_WINDOWS", True)
    assert _platform.stop_signals() == (signal.SIGINT,)
    assert "start_new_session" not in _platform.new_group_kwargs()
    previous = signal.getsignal(signal.SIGINT)
    try:
        cli._own_interrupts()  # the CLI's Ctrl-C handling, with no SIGTERM to take
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    # a child and the one it started, ended as a tree (psutil), with no killpg
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        parent = psutil.Process(child.pid)
        for _ in range(100):
            if parent.children():
                break
            psutil.wait_procs([], timeout=0.05)
        grandchildren = parent.children(recursive=True)
        assert grandchildren
        _platform.kill_tree(child)
        child.wait(10)
        gone, alive = psutil.wait_procs(grandchildren, timeout=5)
        assert not alive
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


class _NoSubprocessLoop(asyncio.SelectorEventLoop):
    """Windows' selector event loop: no subprocesses."""

    async def subprocess_exec(self, *args, **kwargs):
        raise NotImplementedError

    async def subprocess_shell(self, *args, **kwargs):
        raise NotImplementedError


def test_a_child_runs_from_a_thread_on_a_loop_that_cannot_start_subprocesses(tmp_path):
    (tmp_path / "sleeper_child.py").write_text("import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)\n")
    (tmp_path / "echo_child.py").write_text("import sys\nprint(sys.stdin.read())\n")
    loop = _NoSubprocessLoop()
    try:
        with pytest.raises(NotImplementedError):
            loop.run_until_complete(asyncio.create_subprocess_exec(sys.executable, "-c", "pass"))
        # the checklist's and the comparison's children still run
        record = loop.run_until_complete(in_child({"scenario": "x"}, 60, module="echo_child",
                                                  sys_path=[str(tmp_path)]))
        assert record == {"scenario": "x"}
        # and a timeout ends the child (found on the sys.path it was given)
        before = {p.pid for p in psutil.Process().children()}
        with pytest.raises(asyncio.TimeoutError):
            loop.run_until_complete(in_child({}, 1.0, module="sleeper_child", sys_path=[str(tmp_path)]))
        assert {p.pid for p in psutil.Process().children()} <= before
    finally:
        loop.close()
