"""Where the platforms differ, in one place (POSIX and Windows).

* **Links**: :func:`link_or_copy` makes a folder entry show another one: a
  symbolic link where the OS allows it; where it refuses (an unprivileged
  Windows account: ``OSError: [WinError 1314]``), a directory junction for a
  folder on Windows (no privilege needed), a hard link or a copy for a file,
  a copy for a small folder elsewhere.
* **Open handles**: :func:`open_handles` — file descriptors on POSIX
  (``psutil.Process.num_fds``), handles on Windows (``num_handles``: files,
  sockets, events...), reported under the one metric name ``fds``
  (:data:`FDS_LABEL` says which).
* **Signals**: :func:`stop_signals` — the signals that ask a process to stop
  here (``SIGTERM`` only where it exists).
* **Process trees**: :func:`new_group_kwargs` starts a child in its own
  process group (POSIX session / Windows ``CREATE_NEW_PROCESS_GROUP``);
  :func:`kill_tree` ends it and everything it started (``killpg`` on POSIX,
  the psutil tree elsewhere).

``gc.freeze`` and :mod:`tracemalloc` behave the same on both (CPython).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["FDS_LABEL", "IS_WINDOWS", "kill_tree", "link_or_copy", "new_group_kwargs", "open_handles",
           "stop_as_interrupt", "stop_signals"]

IS_WINDOWS = sys.platform == "win32"
#: What the ``fds`` metric counts on this platform.
FDS_LABEL = "open handles" if IS_WINDOWS else "open file descriptors"
#: A folder larger than this is not copied when it can't be linked.
COPY_LIMIT_BYTES = 64 * 1024 * 1024


def _junction(src: Path, dst: Path) -> bool:
    """A Windows directory junction (no privilege needed); ``False`` where
    there is none."""
    try:
        import _winapi  # type: ignore[import-not-found]
    except ImportError:
        return False
    create = getattr(_winapi, "CreateJunction", None)
    if create is None:
        return False
    try:
        create(str(src), str(dst))
    except OSError:
        return False
    return True


def _size(path: Path, limit: int) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
            if total > limit:
                return total
    return total


def link_or_copy(src: Path, dst: Path, *, copy_limit_bytes: int = COPY_LIMIT_BYTES) -> str:
    """Make ``dst`` show ``src`` (read-only use): how it was done.

    Returns:
        ``"symlink"``, ``"junction"``, ``"hardlink"``, ``"copy"``, or
        ``"skipped"`` (a folder too large to copy where nothing else works:
        ``dst`` is not made; the caller says so).
    """
    src, dst = Path(src), Path(dst)
    is_dir = src.is_dir()
    try:
        os.symlink(src, dst, target_is_directory=is_dir)
        return "symlink"
    except (OSError, NotImplementedError):
        pass
    if is_dir:
        if _junction(src, dst):
            return "junction"
        if _size(src, copy_limit_bytes) > copy_limit_bytes:
            return "skipped"
        shutil.copytree(src, dst, symlinks=True)
        return "copy"
    try:
        os.link(src, dst)
        return "hardlink"
    except (OSError, NotImplementedError):
        shutil.copy2(src, dst)
        return "copy"


def open_handles(proc: Any) -> int:
    """File descriptors (POSIX) or handles (Windows) of a psutil process;
    ``-1`` where neither can be read."""
    import psutil

    for name in ("num_fds", "num_handles"):
        method = getattr(proc, name, None)
        if method is not None:
            try:
                return int(method())
            except (psutil.Error, OSError):
                return -1
    return -1


def stop_signals() -> tuple[signal.Signals, ...]:
    """``SIGINT``, and ``SIGTERM`` where the platform has it."""
    return tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


def stop_as_interrupt() -> None:
    """Ctrl-C raises ``KeyboardInterrupt`` (restored: a shell starts
    background jobs with SIGINT ignored), and SIGTERM, where there is one,
    takes the same clean path."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in stop_signals():
        if sig != signal.SIGINT:
            signal.signal(sig, lambda signum, frame: signal.raise_signal(signal.SIGINT))


def new_group_kwargs() -> dict[str, Any]:
    """``subprocess.Popen`` keywords that start a child in its own process
    group, so :func:`kill_tree` can end what it starts too."""
    if IS_WINDOWS or not hasattr(os, "setsid"):
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    return {"start_new_session": True}


def kill_tree(proc: subprocess.Popen[Any]) -> None:
    """Kill a child started with :func:`new_group_kwargs` and everything it
    started. POSIX: its process group (which outlives the child itself).
    Windows: its psutil tree while it runs (once it has exited, its pid may
    be another process's: nothing is killed)."""
    killpg = getattr(os, "killpg", None)
    if killpg is not None and not IS_WINDOWS:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            killpg(proc.pid, signal.SIGKILL)
        return
    if proc.poll() is not None:
        return
    import psutil

    try:
        root = psutil.Process(proc.pid)
        procs = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=5)
