"""Memory that a count of live objects does not show: what only a gc pass
frees, and RSS that grows while no object does (the allocator holding freed
pages, told from a native leak by asking it to give them back)."""

from __future__ import annotations

import gc
import sys

import pytest

from leaklab import metrics
from leaklab.analysis import judge, memory_summary
from leaklab.metrics import Kind, Verdict
from leaklab.probes import CyclicGarbage, MemoryProbe, ProbeContext, collect_cyclic
from leaklab.session import LeakSession
from tests.conftest import run_async

pytestmark = pytest.mark.lowest_env  # gc and the allocator on the users' Python


class Node:
    pass


def test_a_cycle_is_counted_once_with_what_it_holds_and_nothing_outlives_the_count():
    gc.collect()
    node = Node()
    node.me, node.payload = node, bytes(256 * 1024)
    del node
    freed = collect_cyclic()
    assert freed.objects >= 1 and freed.bytes >= 256 * 1024 and ("Node", 1) in freed.top_types
    # the count kept no reference: the next pass finds nothing of it
    again = collect_cyclic()
    assert ("Node", 1) not in again.top_types and again.bytes < 64 * 1024
    assert gc.get_debug() == 0 and not [o for o in gc.garbage if isinstance(o, Node)]


def census(rss, freed=0, types=0):
    return [{"cycle": c, "t": float(c), "rss_mb": 100.0 + rss * c, "gc_freed_bytes": float(freed if c else 0),
             "gc_freed_objects": 10.0 if c else 0.0, metrics.name(Kind.TYPE, "Sess"): float(types * c)} for c in range(6)]


def summary(records, allocator=None):
    return memory_summary(records, judge(records, None), allocator)


@pytest.mark.parametrize(("records", "allocator", "cyclic", "rss"), [
    (census(0.0, freed=512 * 1024), None, "cyclic", "none"),
    (census(0.0, freed=4 * 1024), None, "none", "none"),
    (census(5.0, types=1), {"available": True, "rss_before_mb": 125.0, "rss_after_mb": 124.0}, "none", "objects"),
    (census(5.0), {"available": True, "rss_before_mb": 125.0, "rss_after_mb": 102.0}, "none", "allocator"),
    (census(5.0), {"available": True, "rss_before_mb": 125.0, "rss_after_mb": 123.0}, "none", "native"),
    (census(5.0), {"available": False}, "none", "can't tell"),
])
def test_what_grows_that_is_not_an_object_is_named(records, allocator, cyclic, rss):
    out = summary(records, allocator)
    assert (out["cyclic"]["verdict"], out["rss"]["verdict"]) == (cyclic, rss), out


def test_without_the_census_collection_cyclic_garbage_is_not_measured_not_ruled_out():
    records = [{k: v for k, v in r.items() if not k.startswith("gc_freed")} for r in census(0.0)]
    assert summary(records)["cyclic"]["verdict"] == "not measured"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_cyclic_garbage_held_heap_and_a_leak_told_apart_on_real_backends():
    async def one(app):
        session = LeakSession(f"tests.apps:{app}", runs_dir=False, progress=False, settle_s=0.05, timeline_s=0.3)
        await session.start()
        try:
            return (await session.run("open-close", 4)).summary()
        finally:
            await session.stop()

    garbage, heap, leak = (run_async(one(a), allow_loop_errors=True)
                           for a in ("cyclic_garbage", "holds_freed_heap", "leaks_contexts"))
    # freed only by a gc pass: 512 KiB a session, and not a leak
    assert garbage["memory"]["cyclic"]["verdict"] == "cyclic" and garbage["types"]["ServiceContext"]["verdict"] == Verdict.NONE
    # (the census's pass frees what no automatic collection freed during the cycle first: the
    # median of 4 cycles is 512 KiB, or half of it when collections ran in two of them)
    assert garbage["memory"]["cyclic"]["bytes_per_cycle"] >= 256 * 1024
    # RSS that grows with no object: the allocator gave it back when asked
    assert heap["memory"]["rss"]["verdict"] == "allocator", heap["memory"]
    assert heap["memory"]["rss"]["returned_mb"] >= 0.5 * heap["memory"]["rss"]["growth_mb"]
    # a leak is a leak, and its garbage is not cyclic
    assert leak["types"]["ServiceContext"]["verdict"] == Verdict.LEAK
    assert leak["memory"]["cyclic"]["verdict"] == "none" and leak["memory"]["rss"]["verdict"] == "none"


def test_memory_probe_owns_what_the_census_collection_freed_and_the_allocator_columns() -> None:
    # GIVEN the census' collection freed 3 objects, 100 bytes
    context = ProbeContext(target=None, freed=CyclicGarbage(3, 100, (("Node", 3),)))  # type: ignore[arg-type]
    out = MemoryProbe().sample(context)
    # THEN both are columns, with the allocator's blocks; with no collection, not measured
    assert (out["gc_freed_objects"], out["gc_freed_bytes"]) == (3, 100) and out["allocated_blocks"] > 0
    context.freed = None
    assert not {"gc_freed_objects", "gc_freed_bytes"} & set(MemoryProbe().sample(context))
    assert MemoryProbe.timeline is False
