"""What stop() counts as left behind: an idle worker of a library's thread
pool (the standard library's, anyio's), parked on its queue, is said, not
counted and not waited for; a thread that is doing something still counts."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import sys
import threading
import time

import anyio.to_thread
import pytest

from leaklab import probes
from leaklab.probes.process import idle_pool_worker
from leaklab.session.stopping import STOP_GRACE_S, judge_threads, left_behind

pytestmark = pytest.mark.lowest_env


def _frame(thread: threading.Thread):
    return sys._current_frames()[thread.ident]


def _wait_until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def _pool_thread(pool: concurrent.futures.ThreadPoolExecutor) -> threading.Thread:
    (thread,) = pool._threads  # noqa: SLF001  (the standard library's pool, read in a test)
    return thread


def test_a_stdlib_pool_worker_is_idle_only_while_parked_on_its_queue():
    release = threading.Event()
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pool-under-test")
    try:
        job = pool.submit(release.wait)
        worker = _pool_thread(pool)
        _wait_until(lambda: _frame(worker).f_code.co_name == "wait")
        # running a job (waiting on an Event, in threading's frames): not idle
        assert idle_pool_worker(_frame(worker)) is None
        release.set()
        job.result(timeout=5)
        _wait_until(lambda: idle_pool_worker(_frame(worker)) is not None)
        # parked on its queue: idle, named by its loop
        assert idle_pool_worker(_frame(worker)) == "concurrent.futures.thread._worker"
    finally:
        release.set()
        pool.shutdown(wait=True)


def test_an_anyio_worker_is_idle_only_while_parked_on_its_queue():
    release = threading.Event()
    seen = {}

    async def main():
        worker = None

        def job():
            nonlocal worker
            worker = threading.current_thread()
            release.wait()

        running = asyncio.ensure_future(anyio.to_thread.run_sync(job))
        await asyncio.to_thread(_wait_until, lambda: worker is not None and _frame(worker).f_code.co_name == "wait")
        seen["running"] = idle_pool_worker(_frame(worker))
        release.set()
        await running
        await asyncio.to_thread(_wait_until, lambda: idle_pool_worker(_frame(worker)) is not None)
        seen["idle"] = idle_pool_worker(_frame(worker))
        seen["name"] = worker.name

    try:
        asyncio.run(main())  # its pool ends the worker when the loop's main task ends
    finally:
        release.set()
    assert seen == {"running": None, "idle": "anyio._backends._asyncio.WorkerThread.run",
                    "name": "AnyIO worker thread"}


def test_a_thread_parked_on_a_queue_outside_a_pool_is_not_idle():
    q: queue.Queue[None] = queue.Queue()
    thread = threading.Thread(target=q.get, name="own-consumer", daemon=True)
    thread.start()
    try:
        _wait_until(lambda: _frame(thread).f_code.co_name == "wait")
        assert idle_pool_worker(_frame(thread)) is None
    finally:
        q.put(None)
        thread.join(5)


def test_left_behind_says_an_idle_pool_worker_without_counting_or_waiting_for_it():
    before = probes.baseline()
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="backend-pool")
    release = threading.Event()
    busy = threading.Thread(target=release.wait, name="backend-busy", daemon=True)
    try:
        pool.submit(lambda: None).result(timeout=5)
        _wait_until(lambda: idle_pool_worker(_frame(_pool_thread(pool))) is not None)
        # GIVEN an idle pool worker and, first, a thread still waiting on something of its own
        busy.start()
        counted, idle = judge_threads(probes.orphans_after(before))
        assert counted == ["backend-busy"]
        assert idle == ["backend-pool_0: idle pool worker of concurrent.futures.thread._worker "
                        "(parked on its queue; its pool ends it)"]
        release.set()
        busy.join(5)
        # WHEN only the idle worker is left at stop
        started = time.monotonic()
        left = asyncio.run(left_behind(before, None))
        # THEN no thread is left behind, the worker is said, and stop did not wait out its grace for it
        assert left.orphans["threads"] == 0 and left.threads == []
        assert len(left.idle) == 1 and left.idle[0].startswith("backend-pool_0: idle pool worker")
        assert time.monotonic() - started < STOP_GRACE_S / 2
    finally:
        release.set()
        pool.shutdown(wait=True)
