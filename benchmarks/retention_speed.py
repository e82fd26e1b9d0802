"""How fast leaklab explains 20 survivors on a big heap, against objgraph.

20 session objects are leaked behind pending asyncio tasks (the C8 shape: an
untracked task whose coroutine holds ``self``) on a heap of at least 2M
gc-tracked objects. In the same run:

* leaklab: one ``gc.collect()`` plus ``analyze_survivors`` for all 20 at once
  (chains, grouping, shallow/deep/retained sizes);
* objgraph: ``find_backref_chain(obj, is_proper_module)`` for each of the 20,
  as a user would call it (each call runs its own ``gc.collect()`` and one
  ``gc.get_referrers`` heap scan per node it visits).

Usage::

    python benchmarks/retention_speed.py [--json] [--heap 2000000] [--instances 20]

``--json`` prints ``{"leaklab_s", "objgraph_s", "speedup_vs_objgraph",
"instances", "heap_objects"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time

import objgraph

from leaklab.retention import analyze_survivors, find_chains


class Session:
    """Stands for a per-connection context."""

    def __init__(self, i: int) -> None:
        self.client_uid = f"client-{i}"
        self.history: list[str] = []

    async def _finish_heavy_init(self) -> None:
        await asyncio.sleep(3600)


class _Ballast:
    """A typical application object: attributes, a dict, a list."""

    def __init__(self, i: int) -> None:
        self.i = i
        self.items = [i]
        # Holds a container, so the dict stays gc-tracked (CPython untracks
        # dicts of atomic values).
        self.meta = {"i": i, "items": self.items}


def build_heap(target: int) -> list[_Ballast]:
    """Grow the gc-tracked heap to at least ``target`` objects."""
    ballast: list[_Ballast] = []
    while (need := target - len(gc.get_objects())) > 0:
        # Each _Ballast is three tracked objects (instance, dict, list).
        ballast.extend(_Ballast(i) for i in range(need // 3 + 1))
    return ballast


def leak(n: int) -> list[asyncio.Task[None]]:
    # The tasks are returned only so the benchmark can cancel them at the
    # end; the loop holds them anyway (that is the leak).
    return [asyncio.create_task(Session(i)._finish_heavy_init()) for i in range(n)]


def survivors() -> list[Session]:
    return [o for o in gc.get_objects() if type(o) is Session]


async def main(heap: int, instances: int, objgraph_limit: int | None) -> dict[str, float | int]:
    ballast = build_heap(heap)
    tasks = leak(instances)
    await asyncio.sleep(0)
    objs = survivors()
    gc.collect()
    heap_objects = len(gc.get_objects())

    t0 = time.perf_counter()
    gc.collect()
    t1 = time.perf_counter()
    report = analyze_survivors({"Session": objs})
    t2 = time.perf_counter()
    leaklab_s, collect_s, analyze_s = t2 - t0, t1 - t0, t2 - t1
    assert len(report.groups) == 1 and report.groups[0].count == instances, report
    assert report.groups[0].root_kind == "pending_task", report

    t0 = time.perf_counter()
    chains = find_chains(objs)
    chains_only_s = time.perf_counter() - t0

    measured = objs[: objgraph_limit or instances]
    t0 = time.perf_counter()
    lengths = []
    for obj in measured:
        chain = objgraph.find_backref_chain(obj, objgraph.is_proper_module)
        lengths.append(len(chain))
        del chain
    objgraph_s = (time.perf_counter() - t0) * instances / len(measured)

    for t in tasks:
        t.cancel()
    await asyncio.wait(tasks)
    del ballast
    return {
        "leaklab_s": round(leaklab_s, 3),
        "objgraph_s": round(objgraph_s, 3),
        "speedup_vs_objgraph": round(objgraph_s / leaklab_s, 1),
        "instances": instances,
        "heap_objects": heap_objects,
        "_chains_only_s": round(chains_only_s, 3),
        "_collect_s": round(collect_s, 3),
        "_analyze_s": round(analyze_s, 3),
        "_objgraph_measured": len(measured),
        "_objgraph_chain_lengths": sorted(set(lengths)),
        "_chain": str(chains[0]),
    }


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--heap", type=int, default=2_000_000, help="gc-tracked objects at least (default 2M)")
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument(
        "--objgraph-sample", type=int, default=None,
        help="time objgraph on this many instances and extrapolate (default: all)",
    )
    args = parser.parse_args(argv)
    result = asyncio.run(main(args.heap, args.instances, args.objgraph_sample))
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}))
    else:
        print(f"heap: {result['heap_objects']:,} gc-tracked objects, {result['instances']} leaked instances")
        print(f"leaklab  (gc.collect + analyze_survivors, all at once): {result['leaklab_s']:.3f} s")
        print(f"         of which gc.collect {result['_collect_s']:.3f} s, analyze_survivors {result['_analyze_s']:.3f} s")
        print(f"         (find_chains alone, no sizes):                 {result['_chains_only_s']:.3f} s")
        print(f"objgraph (find_backref_chain per instance, {result['_objgraph_measured']} timed): {result['objgraph_s']:.3f} s")
        print(f"speed-up: {result['speedup_vs_objgraph']}x")
        print(f"objgraph chain lengths: {result['_objgraph_chain_lengths']}")
        print(f"leaklab chain: {result['_chain']}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
