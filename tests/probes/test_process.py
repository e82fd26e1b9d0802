"""Process gauges (RSS, fds, threads, children) and what was left behind
since a baseline."""

from __future__ import annotations

import socket
import subprocess
import threading
import tracemalloc

from leaklab.driver.scenarios import CycleState
from leaklab.probes import ProbeContext, ProcessProbe, baseline, orphans_after, process_snapshot


def test_process_snapshot_has_sane_values() -> None:
    # WHEN the process is measured
    snap = process_snapshot()
    # THEN the gauges are plausible
    assert snap.rss_mb > 1
    assert snap.fds > 2
    assert snap.threads >= 1 and snap.native_threads >= 1
    assert snap.children == 0
    assert snap.gc_objects is not None and snap.gc_objects > 1000
    assert snap.tracemalloc_mb is None
    assert process_snapshot(count_gc_objects=False).gc_objects is None
    # WHEN tracemalloc traces
    tracemalloc.start()
    try:
        blob = [bytearray(1024) for _ in range(100)]
        traced = process_snapshot().tracemalloc_mb
        del blob
    finally:
        tracemalloc.stop()
    # THEN its current size is reported
    assert traced is not None and traced > 0.05


def test_process_snapshot_counts_child_processes() -> None:
    # GIVEN a baseline
    before = process_snapshot(count_gc_objects=False).children
    # WHEN a child process runs
    child = subprocess.Popen(["sleep", "5"])
    try:
        # THEN it is counted
        assert process_snapshot(count_gc_objects=False).children == before + 1
    finally:
        child.kill()
        child.wait()
    # THEN a reaped child is not
    assert process_snapshot(count_gc_objects=False).children == before


def test_orphans_after_sees_only_new_listeners_threads_children() -> None:
    stop = threading.Event()
    with socket.socket() as old_listener, socket.socket() as new_listener:
        # GIVEN a listener opened before the baseline
        old_listener.bind(("127.0.0.1", 0))
        old_listener.listen()
        before = baseline()
        assert old_listener.getsockname()[1] in before.listening_ports
        # WHEN a listener, a thread and a child start after it
        new_listener.bind(("127.0.0.1", 0))
        new_listener.listen()
        worker = threading.Thread(target=stop.wait, name="probe-worker")
        worker.start()
        child = subprocess.Popen(["sleep", "5"])
        try:
            orphans = orphans_after(before)
            # THEN only those are reported
            assert orphans.listening_ports == (new_listener.getsockname()[1],)
            assert orphans.threads == (worker.ident,) and orphans.thread_names == ("probe-worker",)
            assert orphans.children == (child.pid,)
            assert orphans.counts() == {"children": 1, "threads": 1, "listening_ports": 1}
        finally:
            stop.set()
            worker.join()
            child.kill()
            child.wait()
    # THEN once all are gone, nothing is an orphan
    assert not orphans_after(before)


def test_process_probe_owns_the_gauges_and_the_cycle_children_peak() -> None:
    # GIVEN the probe, in the timeline (no cycle) and after a cycle that saw 5 children
    probe = ProcessProbe()
    context = ProbeContext(target=None)  # type: ignore[arg-type]
    timeline = probe.sample(context)
    context.state = CycleState("127.0.0.1", 0, "/client-ws", None, (), 1, 1.0, children_peak=5)
    after = probe.sample(context)
    # THEN the gauges, and the peak only after a cycle (the most seen, live or sampled)
    gauges = {"rss_mb", "fds", "threads", "children", "gc_objects"}
    assert gauges <= set(timeline) and "children_peak" not in timeline
    assert set(timeline) - gauges <= {"tracemalloc_mb"}
    assert after["children_peak"] == max(5, after["children"]) and probe.timeline is True


def test_the_loops_cancelled_timers_are_not_counted_as_objects():
    import asyncio

    from leaklab.probes.process import tracked_objects

    async def main():
        loop = asyncio.get_running_loop()
        before = tracked_objects()
        # GIVEN 50 waits that ended early: their timers stay in the loop's heap, cancelled
        handles = [loop.call_later(60, lambda: None) for _ in range(50)]
        for h in handles:
            h.cancel()
        del handles
        import gc
        gc.collect()
        # THEN they are the loop's bookkeeping, not objects of the app
        return tracked_objects() - before

    assert asyncio.run(main()) < 20
