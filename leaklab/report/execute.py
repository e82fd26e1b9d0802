"""Executing notebooks headless: one fresh kernel each (nbclient), its
processes and temporary files ended with it, Ctrl-C taken back from nbclient.

:func:`execute_notebook` runs one notebook and returns a :class:`NotebookRun`
(a failing cell is reported, not raised); :class:`Interrupts` turns Ctrl-C
(or SIGTERM) during a whole build into a cancellation that shuts every
kernel down. Nothing here knows what the notebooks show.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat
import psutil

from .._platform import stop_signals
from .notebooks import inject_parameters, read_notebook

__all__ = ["Interrupts", "NotebookRun", "execute_notebook", "execute_notebooks"]


@dataclasses.dataclass
class NotebookRun:
    """One executed notebook.

    Attributes:
        name: notebook name (no suffix).
        nb: the executed notebook (outputs filled, up to the failing cell).
        params: the parameters injected.
        elapsed_s: wall time, kernel start to shutdown.
        error: the failure (cell and exception), or ``None``.
        leftover_processes: processes the kernel started that were still
            alive after it shut down (they were terminated).
    """

    name: str
    nb: nbformat.NotebookNode
    params: dict[str, Any]
    elapsed_s: float
    error: str | None = None
    leftover_processes: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None




def _descendants(pid: int) -> dict[int, float]:
    """Live descendants of ``pid``: pid -> create time (identity against pid reuse)."""
    out: dict[int, float] = {}
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                out[child.pid] = child.create_time()
    return out


def _end_processes(seen: Mapping[int, float], timeout: float = 5.0) -> int:
    """Terminate (then kill) the processes in ``seen`` that are still alive;
    returns how many were. Only the kernel's own descendants get here."""
    alive = []
    for pid, created in seen.items():
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, still = psutil.wait_procs(alive, timeout=timeout)
    for p in still:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(still, timeout=timeout)
    return len(alive)


def _kernel_env(extra: Mapping[str, str] | None, tmp: str) -> dict[str, str]:
    env = dict(os.environ)
    # The kernel's temporary files (the backend's cache and history folders,
    # among others) go in a folder of ours, removed after the kernel: an
    # interrupted notebook never reaches `session.stop()`, which removes them.
    env["TMPDIR"] = tmp
    # `--target mypkg.app:factory` names a module of the folder the build was
    # started from, as `python -m` would find it; the kernel runs in notebooks/.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH", "")) if p)
    # debugpy's "frozen modules" warning on every kernel start: noise in the logs.
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env.update(extra or {})
    return env


async def execute_notebook(
    path: Path | str,
    params: Mapping[str, Any] | None = None,
    *,
    cwd: Path | str | None = None,
    timeout: float = 900,
    startup_timeout: float = 120,
    env: Mapping[str, str] | None = None,
    kernel_name: str = "python3",
    log_path: Path | str | None = None,
    on_kernel_start: Callable[[], None] | None = None,
) -> NotebookRun:
    """Execute a notebook in a fresh kernel; the kernel is shut down after,
    and any process it started that outlived it is ended.

    Args:
        path: the ``.ipynb``.
        params: values injected after the ``parameters`` cell (only the names
            it declares).
        cwd: the kernel's working directory (default: the notebook's folder).
        timeout: seconds allowed per cell.
        startup_timeout: seconds allowed for the kernel to start.
        env: extra environment variables for the kernel. ``TMPDIR`` is set
            to a folder that is removed after the kernel.
        kernel_name: the kernel spec.
        log_path: where the kernel's own stdout/stderr go (default: discarded).
        on_kernel_start: called right before the kernel starts, after
            nbclient installed its signal handlers (:func:`~leaklab.report.build.build_report_async`
            takes Ctrl-C back there).

    Returns:
        A :class:`NotebookRun`; a failing cell is reported in ``.error``, not raised.

    Raises:
        asyncio.CancelledError: when cancelled, after the kernel was shut
            down and what it started was ended.
    """
    from nbclient.exceptions import (
        CellExecutionError,
        CellTimeoutError,
        DeadKernelError,
    )

    path = Path(path)
    nb = inject_parameters(read_notebook(path), params or {}) if params else read_notebook(path)
    cwd = Path(cwd) if cwd is not None else path.parent
    seen: dict[int, float] = {}
    tmp = tempfile.mkdtemp(prefix=f"leaklab-kernel-{path.stem}-")

    def kernel_pid() -> int | None:
        return getattr(getattr(client.km, "provisioner", None), "pid", None)

    def note_children(**_: Any) -> None:
        pid = kernel_pid()
        if pid:
            seen.update(_descendants(pid))

    client = _client_class()(
        nb,
        timeout=timeout,
        startup_timeout=startup_timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(cwd)}},
        store_widget_state=False,
        on_cell_complete=note_children,
        on_cell_error=note_children,
    )
    client.before_kernel_start = on_kernel_start
    client.ipc_prefix = _ipc_prefix(tmp)
    error = None
    started = time.monotonic()
    leftover = 0
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 -- closed below, after the kernel
    try:
        await client.async_execute(
            cwd=str(cwd), env=_kernel_env(env, tmp),
            stdout=log or asyncio.subprocess.DEVNULL, stderr=log or asyncio.subprocess.DEVNULL,
        )
    except CellExecutionError as exc:
        error = _first_line_of_error(exc)
    except (CellTimeoutError, DeadKernelError, RuntimeError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    except BaseException:
        # Cancelled (Ctrl-C): while a cell runs nbclient shuts its kernel down
        # itself; while the kernel is starting it does not, so do it here.
        pid = kernel_pid() if client.km is not None else None
        if pid:
            with contextlib.suppress(psutil.Error):
                seen[pid] = psutil.Process(pid).create_time()
            seen.update(_descendants(pid))
        await _shut_down(client)
        raise
    finally:
        # nbclient's exit-time cleanup of this kernel: done (or never started)
        with contextlib.suppress(Exception):
            atexit.unregister(client._cleanup_kernel)
        if log is not None:
            log.close()
        # What the kernel started in sessions of its own (the MCP SDK's
        # servers) outlives the kernel's process group: end it here.
        leftover = _end_processes(seen) if seen else 0
        shutil.rmtree(tmp, ignore_errors=True)
    return NotebookRun(path.stem, nb, dict(params or {}), time.monotonic() - started, error, leftover)


def _ipc_prefix(tmp: str) -> str | None:
    """Where the kernel's sockets go, as Unix sockets in its own temp folder:
    no TCP port to pick, so no race with a backend (or another kernel)
    binding an ephemeral port between the pick and the kernel's bind. None
    (TCP, as jupyter's default) where Unix sockets are not available or the
    path would be too long for one."""
    if os.name != "posix":
        return None
    prefix = os.path.join(tmp, "kernel")
    return prefix if len(prefix) + 8 < 100 else None


def _client_class() -> type:
    """nbclient's ``NotebookClient`` that lets the caller take the signal
    handlers back before the kernel starts (see :class:`Interrupts`)."""
    from nbclient import NotebookClient

    class _Client(NotebookClient):  # type: ignore[misc]
        before_kernel_start: Callable[[], None] | None = None
        ipc_prefix: str | None = None

        def create_kernel_manager(self) -> Any:
            km = super().create_kernel_manager()
            if self.ipc_prefix is not None:
                km.transport, km.ip = "ipc", self.ipc_prefix
            return km

        async def async_start_new_kernel(self, **kwargs: Any) -> None:
            # nbclient has just installed its SIGINT/SIGTERM handlers (they
            # shut this kernel down and leave the caller running into it).
            if self.before_kernel_start is not None:
                self.before_kernel_start()
            await super().async_start_new_kernel(**kwargs)

    return _Client


async def _shut_down(client: Any) -> None:
    """Shut a kernel down after a cancellation, and drop nbclient's
    exit-time cleanup of it (it would fail on a kernel already gone)."""
    # A kernel cancelled while starting may fail its cleanup (its channels'
    # pending reads are cancelled too); the caller re-raises the original
    # cancellation and ends the kernel's process in any case.
    with contextlib.suppress(Exception, asyncio.CancelledError):
        if client.km is not None:
            await asyncio.wait_for(client._async_cleanup_kernel(), 15)
    with contextlib.suppress(Exception):
        atexit.unregister(client._cleanup_kernel)


def _first_line_of_error(exc: Exception) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", "")
    return f"{ename}: {evalue}".strip()


class Interrupts:
    """Ctrl-C (or SIGTERM) during a build cancels it; every kernel is shut
    down on the way out.

    nbclient installs its own SIGINT/SIGTERM handlers for each notebook
    (they shut that one kernel down and leave the build running into a dead
    kernel) and removes them when the notebook ends; so ours is put back
    right before each kernel starts and whenever a notebook ends.
    """

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.received = False

    def _on_signal(self) -> None:
        if not self.received and self.task is not None:
            self.received = True
            self.task.cancel()

    def take(self) -> None:
        """Put our handlers in place (again): call before each kernel starts
        and after each notebook ends."""
        loop = asyncio.get_running_loop()
        for sig in stop_signals():  # Windows loops have no add_signal_handler: Ctrl-C stays KeyboardInterrupt
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal)

    def release(self) -> None:
        """Give the signals back (the build is over)."""
        loop = asyncio.get_running_loop()
        for sig in stop_signals():
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


async def execute_notebooks(
    jobs: Sequence[tuple[str, Path, Mapping[str, Any]]],
    *,
    concurrency: int = 1,
    timeout: float = 900,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    on_start: Callable[[str], None] | None = None,
    on_progress: Callable[[NotebookRun], None] | None = None,
) -> list[NotebookRun]:
    """Execute notebooks, ``concurrency`` kernels at a time, each as
    :func:`execute_notebook` does; Ctrl-C (or SIGTERM) stops them all.

    Args:
        jobs: ``(name, notebook path, parameters)``.
        concurrency: kernels at a time.
        timeout: seconds allowed per cell.
        env: extra environment variables for the kernels.
        log_dir: where each kernel's own output goes (``<name>.log``;
            default: discarded).
        on_start: called with a notebook's name when its kernel starts.
        on_progress: called with each finished :class:`NotebookRun`.

    Returns:
        The runs, in the order of ``jobs``.

    Raises:
        KeyboardInterrupt: Ctrl-C or SIGTERM, once every kernel was shut down.
    """
    gate = asyncio.Semaphore(max(1, concurrency))
    interrupts = Interrupts(asyncio.current_task())

    async def one(name: str, path: Path, params: Mapping[str, Any]) -> NotebookRun:
        async with gate:
            if on_start is not None:
                on_start(name)
            run = await execute_notebook(
                path, params, timeout=timeout, env=env,
                log_path=log_dir / f"{name}.log" if log_dir is not None else None,
                on_kernel_start=interrupts.take,
            )
            interrupts.take()
        if on_progress is not None:
            on_progress(run)
        return run

    interrupts.take()
    try:
        return list(await asyncio.gather(*(one(name, path, params) for name, path, params in jobs)))
    except asyncio.CancelledError:
        if interrupts.received:
            raise KeyboardInterrupt from None
        raise
    finally:
        interrupts.release()
