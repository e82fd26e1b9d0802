"""Pending asyncio tasks, grouped by coroutine and by where they were created."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from ..metrics import Kind, name as metric_name
from .base import BaseProbe, ProbeContext, Sample

__all__ = ["CreationSite", "TaskCensus", "TaskCreationRecorder", "TasksProbe", "task_census", "task_label"]

_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
_PROBES_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclasses.dataclass(frozen=True)
class TaskCensus:
    """Tasks pending on a loop (the caller's own task excluded).

    Attributes:
        total: number of pending tasks.
        by_coroutine: :func:`task_label` -> count, most frequent first.
        by_site: creation site (``"file:line (function)"``) -> count, when a
            :class:`TaskCreationRecorder` was given; tasks created before it
            was installed count under ``"<unknown>"``.
    """

    total: int
    by_coroutine: dict[str, int]
    by_site: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CreationSite:
    """The first frame outside asyncio and leaklab.probes that created a task."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno} ({self.function})"


def task_label(task: asyncio.Future[Any]) -> str:
    """The name a task is grouped under.

    The coroutine's ``__qualname__`` (``"WebSocketHandler._handle_text_input"``);
    for a coroutine-like object without one, its type's qualname; for a task
    that wraps no coroutine (``get_coro()`` is ``None`` or not a coroutine),
    the task's name.
    """
    get_coro = getattr(task, "get_coro", None)
    coro = get_coro() if get_coro is not None else None
    if coro is not None:
        qualname = getattr(coro, "__qualname__", None)
        if isinstance(qualname, str):
            return qualname
        if asyncio.iscoroutine(coro):
            return type(coro).__qualname__
    get_name = getattr(task, "get_name", None)
    return get_name() if get_name is not None else type(task).__qualname__


def task_census(
    loop: asyncio.AbstractEventLoop | None = None, *, recorder: TaskCreationRecorder | None = None
) -> TaskCensus:
    """Group the pending tasks of ``loop`` by coroutine.

    Args:
        loop: the loop; default the running loop.
        recorder: if given, also group by creation site.

    Returns:
        A :class:`TaskCensus`; the task calling this (if any) is excluded.

    Raises:
        RuntimeError: no loop given and none running.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    current = asyncio.current_task(loop)
    tasks = [t for t in asyncio.all_tasks(loop) if t is not current]
    by_coroutine = Counter(task_label(t) for t in tasks)
    by_site: Counter[str] = Counter()
    if recorder is not None:
        for t in tasks:
            site = recorder.site(t)
            by_site[str(site) if site is not None else "<unknown>"] += 1
    return TaskCensus(
        total=len(tasks),
        by_coroutine=dict(sorted(by_coroutine.items(), key=lambda kv: (-kv[1], kv[0]))),
        by_site=dict(sorted(by_site.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


TaskFactory = Callable[..., "asyncio.Future[Any]"]


#: Ended tasks a recorder remembers (for which task's end freed an object).
MAX_ENDED = 50_000


class _EndRecorder:
    """A done callback: when a recorded task ends, note when, and what it was
    (no reference to the task is kept)."""

    __slots__ = ("ended", "created_at", "site")

    def __init__(self, ended: deque[tuple[float, float, str]], created_at: float, site: CreationSite) -> None:
        self.ended, self.created_at, self.site = ended, created_at, site

    def __call__(self, task: asyncio.Future[Any]) -> None:
        where = f"{os.path.basename(self.site.filename)}:{self.site.lineno}"
        self.ended.append((self.created_at, time.monotonic(), f"{task_label(task)} ({where})"))


class TaskCreationRecorder:
    """A loop task factory that remembers where each task was created.

    The site is the first stack frame whose file is outside asyncio, outside
    ``leaklab/probes`` and outside ``skip_dirs`` (so ``TaskGroup.create_task``
    or ``ensure_future`` resolve to their caller). It is found by walking
    ``sys._getframe()`` back-links, with a per-file cache of the skip decision:
    a few hundred nanoseconds per task, no traceback objects. Sites are held
    in a ``WeakKeyDictionary`` keyed by task: a finished, dropped task leaves
    nothing behind.

    An existing task factory is chained (it still creates the task) and put
    back by :meth:`uninstall`.

    Args:
        loop: the loop to instrument; default the running loop at :meth:`install`.
        skip_dirs: more path prefixes whose frames are skipped (a framework
            that spawns tasks on behalf of its caller, e.g. anyio).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, *, skip_dirs: Iterable[str] = ()) -> None:
        self._loop = loop
        self._skip: tuple[str, ...] = (_ASYNCIO_DIR, _PROBES_DIR, *skip_dirs)
        self._skip_cache: dict[str, bool] = {}
        self._site_cache: dict[tuple[str, int, str], CreationSite] = {}
        self._sites: weakref.WeakKeyDictionary[asyncio.Future[Any], CreationSite] = weakref.WeakKeyDictionary()
        self._previous: TaskFactory | None = None
        self._installed_on: asyncio.AbstractEventLoop | None = None
        #: ``(created_at, done_at, "label (file:line)")`` of each recorded task
        #: that ended, oldest first (the last :data:`MAX_ENDED` of them)
        self.ended: deque[tuple[float, float, str]] = deque(maxlen=MAX_ENDED)

    @property
    def installed(self) -> bool:
        """Whether the factory is set on a loop."""
        return self._installed_on is not None

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> TaskCreationRecorder:
        """Set the factory on the loop, chaining the current one (idempotent).

        Raises:
            RuntimeError: no loop given and none running.
        """
        if self._installed_on is not None:
            return self
        loop = loop or self._loop or asyncio.get_running_loop()
        self._previous = loop.get_task_factory()
        loop.set_task_factory(self._factory)
        self._installed_on = loop
        return self

    def uninstall(self) -> None:
        """Put back the factory that was set before :meth:`install` (idempotent).

        Raises:
            RuntimeError: the loop's factory was replaced after install; the
                factory is left as is.
        """
        loop = self._installed_on
        if loop is None:
            return
        if loop.get_task_factory() != self._factory:
            raise RuntimeError("the loop's task factory was replaced after TaskCreationRecorder.install()")
        loop.set_task_factory(self._previous)
        self._previous = None
        self._installed_on = None

    def __enter__(self) -> TaskCreationRecorder:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    def _factory(self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
        previous = self._previous
        task = previous(loop, coro, **kwargs) if previous is not None else asyncio.Task(coro, loop=loop, **kwargs)
        site = self._creation_site()
        if site is not None:
            try:
                self._sites[task] = site
            except TypeError:  # a custom factory returned something not weakref-able
                pass
            add = getattr(task, "add_done_callback", None)
            if add is not None:
                add(_EndRecorder(self.ended, time.monotonic(), site))
        return task

    def _creation_site(self) -> CreationSite | None:
        skip_cache = self._skip_cache
        frame = sys._getframe(1)
        while frame is not None:
            filename = frame.f_code.co_filename
            skip = skip_cache.get(filename)
            if skip is None:
                skip = skip_cache[filename] = filename.startswith(self._skip)
            if not skip:
                break
            frame = frame.f_back
        if frame is None:
            return None
        key = (filename, frame.f_lineno, getattr(frame.f_code, "co_qualname", frame.f_code.co_name))  # 3.10: no co_qualname
        del frame
        site = self._site_cache.get(key)
        if site is None:
            site = self._site_cache[key] = CreationSite(*key)
        return site

    def site(self, task: asyncio.Future[Any]) -> CreationSite | None:
        """Where ``task`` was created; ``None`` if created before :meth:`install`."""
        try:
            return self._sites.get(task)
        except TypeError:
            return None

    def tasks(self) -> list[asyncio.Future[Any]]:
        """The recorded tasks still alive (done or not). The caller must drop
        the list."""
        return list(self._sites.keys())

    def live_sites(self) -> dict[str, int]:
        """Recorded tasks not yet done, by creation site, most frequent first."""
        counts: Counter[str] = Counter()
        for task, site in list(self._sites.items()):
            if not task.done():
                counts[str(site)] += 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


class TasksProbe(BaseProbe):
    """``tasks`` (pending tasks but the caller) and ``task:<coroutine>``.

    Installs a :class:`TaskCreationRecorder` on the running loop and
    publishes it (``context.task_sites``): retention chains say where each
    task was created.
    """

    name = "tasks"
    timeline = True

    def __init__(self) -> None:
        self.recorder: TaskCreationRecorder | None = None

    def install(self, context: ProbeContext) -> None:
        self.recorder = TaskCreationRecorder()
        self.recorder.install(asyncio.get_running_loop())
        context.task_sites = self.recorder

    def sample(self, context: ProbeContext) -> Sample:
        tc = task_census()
        out: Sample = {"tasks": tc.total}
        for qualname, n in tc.by_coroutine.items():
            out[metric_name(Kind.TASK, qualname)] = n
        return out

    def uninstall(self) -> None:
        if self.recorder is not None:
            self.recorder.uninstall()
