"""Process-level gauges (memory, descriptors, threads, children) and orphans
left behind since a baseline (child processes, threads, listening ports)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import linecache
import sys
import threading
import tracemalloc
from collections.abc import Iterable
from typing import Any

import psutil

from .._platform import open_handles
from .base import BaseProbe, ProbeContext, Sample

__all__ = [
    "POOL_WORKER_LOOPS", "ChildWatch", "Orphans", "ProcessBaseline", "ProcessProbe", "ProcessSnapshot", "baseline",
    "idle_pool_worker", "idle_pool_workers", "orphans_after", "process_snapshot",
]

_MB = 1024 * 1024
DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1",)


@dataclasses.dataclass(frozen=True)
class ProcessSnapshot:
    """Gauges of the current process.

    Attributes:
        rss_mb: resident set size, MiB.
        fds: open file descriptors (``psutil.Process.num_fds``; on Windows
            open handles, ``num_handles``: see :mod:`leaklab._platform`; ``-1`` where
            the platform has none, i.e. Windows).
        threads: Python threads alive (``threading.active_count()``).
        native_threads: OS threads of the process (``psutil num_threads``),
            which also sees threads started by C libraries.
        children: live, non-zombie descendant processes (recursive).
        gc_objects: ``len(gc.get_objects())`` less the loop's cancelled timers
            (:func:`tracked_objects`), or ``None`` when skipped. This
            builds a list of every gc-tracked object: tens of milliseconds per
            million objects plus one pointer each of transient memory.
        tracemalloc_mb: memory traced by tracemalloc now, MiB, or ``None``
            when tracemalloc is not tracing.
    """

    rss_mb: float
    fds: int
    threads: int
    native_threads: int
    children: int
    gc_objects: int | None
    tracemalloc_mb: float | None


@dataclasses.dataclass(frozen=True)
class ProcessBaseline:
    """What existed before: compared against by :func:`orphans_after`.

    Attributes:
        children: pids of live descendant processes.
        threads: ``ident`` of live Python threads.
        listening_ports: TCP ports this process listens on, on ``hosts``.
        hosts: local addresses the ports were filtered on (``None``: any).
    """

    children: frozenset[int]
    threads: frozenset[int]
    listening_ports: frozenset[int]
    hosts: tuple[str, ...] | None = DEFAULT_HOSTS


@dataclasses.dataclass(frozen=True)
class Orphans:
    """Things alive now that were not in the baseline.

    Attributes:
        children: pids of new live descendant processes.
        threads: idents of new live Python threads.
        thread_names: their names, in the same order.
        listening_ports: new TCP LISTEN ports of this process.
    """

    children: tuple[int, ...]
    threads: tuple[int, ...]
    thread_names: tuple[str, ...]
    listening_ports: tuple[int, ...]

    def counts(self) -> dict[str, int]:
        """``{"children": n, "threads": n, "listening_ports": n}``."""
        return {"children": len(self.children), "threads": len(self.threads), "listening_ports": len(self.listening_ports)}

    def __bool__(self) -> bool:
        return bool(self.children or self.threads or self.listening_ports)


def foreign_pids(roots: Iterable[int]) -> set[int]:
    """The processes in the trees rooted at ``roots`` (the kit's own
    children, such as a browser driving the backend's page): never the
    backend's."""
    out: set[int] = set()
    for root in list(roots):
        with contextlib.suppress(psutil.Error):
            out.add(root)
            out.update(c.pid for c in psutil.Process(root).children(recursive=True))
    return out


def _live_children(proc: psutil.Process, skip: Iterable[int] = ()) -> set[int]:
    pids = set()
    foreign = foreign_pids(skip)
    for child in proc.children(recursive=True):
        if child.pid in foreign:
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if child.status() != psutil.STATUS_ZOMBIE:
                pids.add(child.pid)
    return pids


def live_children() -> int:
    """Live, non-zombie descendant processes of this process, now (cheap:
    for sampling while a cycle runs)."""
    return len(_live_children(psutil.Process()))


def _thread_idents() -> dict[int, str]:
    return {t.ident: t.name for t in threading.enumerate() if t.ident is not None and t.is_alive()}


#: The worker loops of the thread pools of libraries, ``(module, function
#: qualname)``: the standard library's (``concurrent.futures``, which
#: ``asyncio.to_thread`` uses) and anyio's (``anyio.to_thread``, which
#: Starlette and the MCP SDK use). A thread parked in one, on its queue's
#: ``get``, is an idle pool worker: its pool ends it (at shutdown, or when it
#: prunes its idle workers), not the session that last gave it work.
POOL_WORKER_LOOPS: frozenset[tuple[str, str]] = frozenset({
    ("concurrent.futures.thread", "_worker"),
    ("anyio._backends._asyncio", "WorkerThread.run"),
})
# Frames of a queue wait between a worker loop and the lock it blocks on.
_WAIT_MODULES = frozenset({"queue", "threading"})


def _loop_of(frame: Any) -> str | None:
    code = frame.f_code
    module = frame.f_globals.get("__name__", "")
    qualname = getattr(code, "co_qualname", None)  # 3.11+; before: the last part only
    for loop_module, loop in POOL_WORKER_LOOPS:
        if module == loop_module and (qualname == loop if qualname else loop.rpartition(".")[2] == code.co_name):
            return f"{module}.{loop}"
    return None


def idle_pool_worker(frame: Any) -> str | None:
    """``"<module>.<loop>"`` when the thread whose innermost frame is
    ``frame`` is a library's pool worker (:data:`POOL_WORKER_LOOPS`) parked
    on its queue, waiting for work; ``None`` otherwise (not a pool worker,
    or one running a job).

    Parked: between the worker loop and the innermost frame there are only
    the queue's own frames (``queue.Queue.get`` waiting on its condition), or
    none, the loop's line calling a C queue's ``get`` (``SimpleQueue``)."""
    inner: list[Any] = []
    f = frame
    while f is not None:
        loop = _loop_of(f)
        if loop is not None:
            if inner:
                waiting = all(g.f_globals.get("__name__") in _WAIT_MODULES for g in inner) and any(
                    g.f_globals.get("__name__") == "queue" and g.f_code.co_name == "get" for g in inner)
            else:
                waiting = ".get(" in linecache.getline(f.f_code.co_filename, f.f_lineno)
            return loop if waiting else None
        inner.append(f)
        f = f.f_back
    return None


def idle_pool_workers(idents: Iterable[int]) -> dict[int, str]:
    """Of the threads ``idents``, the idle pool workers now: ident -> their
    worker loop (:func:`idle_pool_worker`)."""
    frames = sys._current_frames()
    out = {}
    for ident in idents:
        frame = frames.get(ident)
        loop = idle_pool_worker(frame) if frame is not None else None
        if loop is not None:
            out[ident] = loop
    return out


def _listening_ports(proc: psutil.Process, hosts: tuple[str, ...] | None) -> set[int]:
    connections = proc.net_connections if hasattr(proc, "net_connections") else proc.connections
    return {
        c.laddr.port
        for c in connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and (hosts is None or c.laddr.ip in hosts)
    }


def tracked_objects() -> int:
    """Objects the collector tracks, less the event loop's cancelled timers
    and their contexts: asyncio drops those from its heap lazily (once they
    are over half of it), so they pile up for a while after every wait that
    ended early, whoever waited (the kit's own clients included): the
    loop's bookkeeping, not the app's objects."""
    n = len(gc.get_objects())
    try:
        # The running loop's heap holds them until it drops them: no second
        # walk over every object (five times the cost of counting on a big heap).
        scheduled = list(asyncio.get_running_loop()._scheduled)
    except (RuntimeError, AttributeError):  # no running loop, or a loop without that heap
        objects = gc.get_objects()
        try:
            scheduled = [o for o in objects if type(o) is asyncio.TimerHandle]
        finally:
            del objects
    cancelled = [h for h in scheduled if h.cancelled()]
    contexts = {id(c) for c in (getattr(h, "_context", None) for h in cancelled) if c is not None}
    return n - len(cancelled) - len(contexts)


def process_snapshot(*, count_gc_objects: bool = True, skip: Iterable[int] = ()) -> ProcessSnapshot:
    """Measure the current process.

    Args:
        count_gc_objects: compute ``gc_objects`` (the costly part; see
            :class:`ProcessSnapshot`).
        skip: roots of process trees that are not the backend's
            (:func:`foreign_pids`): left out of ``children``.

    Returns:
        A :class:`ProcessSnapshot`.
    """
    proc = psutil.Process()
    with proc.oneshot():
        rss = proc.memory_info().rss
        fds = open_handles(proc)
        native_threads = proc.num_threads()
    children = len(_live_children(proc, skip))
    gc_objects = tracked_objects() if count_gc_objects else None
    traced = tracemalloc.get_traced_memory()[0] / _MB if tracemalloc.is_tracing() else None
    return ProcessSnapshot(
        rss_mb=rss / _MB,
        fds=fds,
        threads=threading.active_count(),
        native_threads=native_threads,
        children=children,
        gc_objects=gc_objects,
        tracemalloc_mb=traced,
    )


def baseline(*, hosts: Iterable[str] | None = DEFAULT_HOSTS) -> ProcessBaseline:
    """Capture live child pids, thread idents and listening ports.

    Args:
        hosts: local addresses whose LISTEN sockets count (``None``: any
            address, including ``0.0.0.0`` and ``::``).
    """
    host_tuple = tuple(hosts) if hosts is not None else None
    proc = psutil.Process()
    return ProcessBaseline(
        children=frozenset(_live_children(proc)),
        threads=frozenset(_thread_idents()),
        listening_ports=frozenset(_listening_ports(proc, host_tuple)),
        hosts=host_tuple,
    )


def orphans_after(before: ProcessBaseline, skip: Iterable[int] = ()) -> Orphans:
    """Child processes, threads and TCP listening ports alive now that were
    not in ``before`` (ports filtered on ``before.hosts``).

    Pids and thread idents can be reused by the OS; over the span of a test
    or a cycle this is rare enough to ignore.
    """
    proc = psutil.Process()
    threads = _thread_idents()
    new_threads = sorted(ident for ident in threads if ident not in before.threads)
    return Orphans(
        children=tuple(sorted(_live_children(proc, skip) - before.children)),
        threads=tuple(new_threads),
        thread_names=tuple(threads[ident] for ident in new_threads),
        listening_ports=tuple(sorted(_listening_ports(proc, before.hosts) - before.listening_ports)),
    )


class ChildWatch:
    """Every descendant process seen since a baseline (pid and start time),
    so that one the backend left can be found at the end even after it was
    re-parented away from this process (to init, when its own parent died).

    :meth:`note` is cheap enough to call while cycles run (it is what counts
    the live children); :meth:`reap` ends what is left.
    """

    def __init__(self, before: ProcessBaseline, skip: Iterable[int] = ()) -> None:
        self._before = before.children
        #: roots of process trees that are not the backend's (read at each note)
        self.skip = skip
        self.seen: dict[int, tuple[float, str]] = {}

    def note(self) -> int:
        """Record the live descendants now; how many there are."""
        proc = psutil.Process()
        n = 0
        foreign = foreign_pids(self.skip)
        for child in proc.children(recursive=True):
            if child.pid in foreign:
                continue
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if child.status() == psutil.STATUS_ZOMBIE:
                    continue
                n += 1
                if child.pid not in self._before and child.pid not in self.seen:
                    self.seen[child.pid] = (child.create_time(), _describe(child))
        return n

    def left(self) -> list[psutil.Process]:
        """Seen processes still running (same pid and start time), ours or re-parented."""
        self.note()
        out = []
        for pid, (started, _) in self.seen.items():
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                if p.create_time() == started and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
        return out

    def reap(self, grace_s: float = 2.0) -> list[str]:
        """Terminate what is left, kill what is still there after ``grace_s``;
        one line per process ended: ``pid N (cmd): terminated|killed``."""
        procs = self.left()
        if not procs:
            return []
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        alive = _wait_ended(procs, grace_s)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        still = _wait_ended(alive, 2.0)
        out = []
        for p in procs:
            how = "terminated" if p not in alive else ("did not die" if p in still else "killed")
            out.append(f"pid {p.pid} ({self.seen[p.pid][1]}): {how}")
        return out


class ProcessProbe(BaseProbe):
    """``rss_mb``, ``fds``, ``threads``, ``children``, ``gc_objects`` and, while
    tracemalloc traces, ``tracemalloc_mb``; after a cycle, ``children_peak``
    (the most live children seen while it ran, sampled by the session)."""

    name = "process"
    timeline = True

    def sample(self, context: ProbeContext) -> Sample:
        snap = process_snapshot(skip=context.foreign_roots)
        out: Sample = {"rss_mb": snap.rss_mb, "fds": snap.fds, "threads": snap.threads, "children": snap.children}
        if snap.gc_objects is not None:
            out["gc_objects"] = snap.gc_objects
        if snap.tracemalloc_mb is not None:
            out["tracemalloc_mb"] = snap.tracemalloc_mb
        if context.state is not None:
            out["children_peak"] = max(context.state.children_peak, snap.children)
        return out


def _wait_ended(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll until each process has exited (a zombie counts: its parent, often
    the event loop's child watcher, reaps it -- waiting here would take its
    exit status from under it); the ones still running after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    left = list(procs)
    while left:
        running = []
        for p in left:
            with contextlib.suppress(psutil.Error):
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    running.append(p)
        left = running
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return left


def _describe(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        cmd = proc.cmdline()
        if cmd:
            text = " ".join(cmd)
            return text if len(text) <= 80 else text[:77] + "..."
    with contextlib.suppress(psutil.Error):
        return proc.name()
    return "?"
