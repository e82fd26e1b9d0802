"""Holders CPython keeps where ``gc`` cannot see them.

A backward search that trusts ``gc.get_referrers`` alone stops where a C
object holds a reference its ``tp_traverse`` does not report. The one that
matters for asyncio backends:

    cancelled Task -> its CancelledError
        CPython 3.11+ keeps the ``CancelledError`` a cancelled task's
        coroutine raised (``_asyncio.Task``'s ``fut_cancelled_exc``, for
        ``task.cancelled()`` / ``await task`` to re-raise it) and its
        traverse does not visit that slot. The error's ``__traceback__``
        keeps every frame it unwound, with their locals: a finished task can
        pin a whole session through it while ``gc`` shows nothing holding
        the error. (3.10 keeps it too, in ways it does show.)

The task cannot be asked for the error without changing it
(``_make_cancelled_error`` hands the stored error over and forgets it), and
a new error would prove nothing. So the error is matched to its task by what
it is: a ``CancelledError`` whose traceback's first frame runs the code of a
cancelled task's coroutine (the first frame of a task's error is always its
coroutine's). When several cancelled tasks ran that code, each error is given
a distinct one of them and the hop says it was matched by code.

Candidate tasks come from a :class:`~leaklab.probes.TaskCreationRecorder`
(``.tasks()``), then, only when none of those matches, from one scan of
``gc.get_objects()`` (tasks created before it, or with no recorder).
"""

from __future__ import annotations

import asyncio
import gc
import types
from collections.abc import Iterable
from typing import Any

__all__ = ["HiddenHolders"]


class HiddenHolders:
    """Finds the gc-invisible holder of an object where a branch ended.

    Internal to one search: holds the candidate tasks (``keep``, ignored by the
    search as a holder) until :meth:`release`.
    """

    def __init__(self, recorder: Any = None) -> None:
        self._recorder = recorder
        self.keep: list[Any] = []
        self._by_code: dict[int, list[int]] | None = None  # code id -> ids of cancelled tasks (in keep)
        self._objects: dict[int, Any] = {}
        self._used: set[int] = set()
        self._scanned = False
        #: id of a task found as a holder -> (id of what it holds, label note)
        self.edges: dict[tuple[int, int], str] = {}
        #: id of an object left untracked -> what was tried
        self.tried: dict[int, str] = {}

    def own_ids(self) -> tuple[int, int]:
        """Ids of this finder's own containers (a chain search must not walk
        through them)."""
        return id(self.keep), id(self._objects)

    def release(self) -> None:
        self.keep.clear()
        self._objects.clear()
        self._by_code = None

    # -- candidates ---------------------------------------------------------
    def _candidates(self, *, everything: bool) -> dict[int, list[int]]:
        """Cancelled tasks by their coroutine's code: the recorder's first;
        with ``everything``, every task on the heap too (one scan)."""
        if self._by_code is None:
            self._by_code = {}
            self._add(self._recorded())
        if everything and not self._scanned:
            self._scanned = True
            self._add(self._all_tasks())
        return self._by_code

    def _add(self, tasks: Iterable[Any]) -> None:
        assert self._by_code is not None
        for task in tasks:
            tid = id(task)
            if tid in self._objects:
                continue
            try:
                if not (task.done() and task.cancelled()):
                    continue
                coro = task.get_coro()
            except Exception:
                continue
            code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
            if code is None:
                continue
            self.keep.append(task)
            self._objects[tid] = task
            self._by_code.setdefault(id(code), []).append(tid)

    def _recorded(self) -> list[Any]:
        tasks_of = getattr(self._recorder, "tasks", None)
        if not callable(tasks_of):
            return []
        try:
            return list(tasks_of())
        except Exception:
            return []

    def _all_tasks(self) -> Iterable[Any]:
        objects = gc.get_objects()
        try:
            for obj in objects:
                if isinstance(obj, asyncio.Task):
                    yield obj
        finally:
            objects.clear()

    # -- lookup -------------------------------------------------------------
    def holder_of(self, obj: Any) -> Any | None:
        """The cancelled task that keeps ``obj`` (its CancelledError, or that
        error's traceback), or ``None`` (and :attr:`tried` says why)."""
        if isinstance(obj, asyncio.CancelledError):
            tb = obj.__traceback__
            what = "CancelledError"
        elif type(obj) is types.TracebackType:
            tb = obj
            what = "traceback"
        else:
            return None
        if tb is None:
            self.tried[id(obj)] = f"a {what} with no traceback: no task to match it to"
            return None
        code = tb.tb_frame.f_code
        by_code = self._candidates(everything=False)
        free = [t for t in by_code.get(id(code), []) if t not in self._used]
        if not free:  # tasks made before the recorder, or without one: look at them all
            by_code = self._candidates(everything=True)
        matching = by_code.get(id(code), [])
        free = [t for t in matching if t not in self._used]
        if not free:
            total = sum(len(v) for v in by_code.values())
            self.tried[id(obj)] = (
                f"not the stored error of a cancelled task: {total} cancelled task(s) checked, "
                f"none ran {code.co_qualname if hasattr(code, 'co_qualname') else code.co_name}"
                if not matching else "every cancelled task that ran its code is matched to another error")
            return None
        tid = free[0]
        self._used.add(tid)
        note = "keeps its CancelledError" if what == "CancelledError" else "keeps its CancelledError's traceback"
        if len(matching) > 1:
            note += f" (matched by its coroutine: one of {len(matching)} cancelled tasks that ran it)"
        self.edges[(tid, id(obj))] = note + " — a reference gc does not see"
        return self._objects[tid]
