"""How fast leaklab explains 20 survivors on a big heap, against objgraph.

20 session objects are leaked on a heap of at least 2M gc-tracked objects,
in two cases:

* ``pending``: behind pending asyncio tasks (the C8 shape: an untracked task
  whose coroutine holds ``self``);
* ``hidden``: behind cancelled conversation tasks that entered an anyio
  cancel scope and never left it (the MCP-session shape): each task keeps its
  CancelledError where gc cannot see, the error's traceback keeps the frame
  and its local; anyio's ``_task_states`` entry refers back to its task, so
  it never dies. The chain crosses a gc-invisible edge.

In the same run, per case:

* leaklab: one ``gc.collect()`` plus ``analyze_survivors`` for all 20 at once
  (chains, grouping, shallow/deep/retained sizes);
* objgraph: ``find_backref_chain(obj, is_proper_module)`` for each of the 20,
  as a user would call it (each call runs its own ``gc.collect()`` and one
  ``gc.get_referrers`` heap scan per node it visits).

Usage::

    python benchmarks/retention_speed.py [--json] [--heap 2000000] [--instances 20] [--case pending|hidden|both]

``--json`` prints, per case, ``{"leaklab_s", "objgraph_s",
"speedup_vs_objgraph", "instances", "heap_objects", "objgraph_finds",
"root_kind"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from typing import Any

import anyio
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


async def _conversation(context: Session) -> None:
    scope = anyio.CancelScope()
    scope.__enter__()  # as an MCP exit stack entered in this task and never closed
    await asyncio.sleep(3600)


async def leak_hidden(n: int) -> None:
    """Cancelled tasks that keep their session through their stored error; we
    keep no reference to them (anyio's task states do, for good)."""
    tasks = [asyncio.create_task(_conversation(Session(i))) for i in range(n)]
    await asyncio.sleep(0)
    for t in tasks:
        t.cancel()
    await asyncio.wait(tasks)
    tasks.clear()


def forget_hidden() -> None:
    from anyio._backends._asyncio import _task_states

    for task in [t for t in list(_task_states.keys()) if t.done()]:
        _task_states.pop(task, None)


def leak(n: int) -> list[asyncio.Task[None]]:
    # The tasks are returned only so the benchmark can cancel them at the
    # end; the loop holds them anyway (that is the leak).
    return [asyncio.create_task(Session(i)._finish_heavy_init()) for i in range(n)]


def _objgraph_chains(measured: list[Session], ignore: tuple[int, ...]) -> list[int]:
    """objgraph's chain length for each survivor, as a user would call it. In
    a plain function: the loop variable lives in this frame, which objgraph is
    told to ignore with the benchmark's own lists (on 3.11+ a coroutine's
    locals are held by the coroutine object, which it would follow)."""
    ours = (*ignore, id(measured), id(sys._getframe()))
    lengths: list[int] = []
    for obj in measured:
        chain = objgraph.find_backref_chain(obj, objgraph.is_proper_module, extra_ignore=ours)
        lengths.append(len(chain))
        del chain
    return lengths


def survivors() -> list[Session]:
    return [o for o in gc.get_objects() if type(o) is Session]


async def main(heap: int, instances: int, objgraph_limit: int | None, case: str = "pending") -> dict[str, Any]:
    ballast = build_heap(heap)
    tasks: list[asyncio.Task[None]] = []
    if case == "hidden":
        await leak_hidden(instances)
    else:
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
    expected_root = "immortal_weak_key" if case == "hidden" else "pending_task"
    assert len(report.groups) == 1 and report.groups[0].count == instances, report
    assert report.groups[0].root_kind == expected_root, report

    t0 = time.perf_counter()
    chains = find_chains(objs)
    chains_only_s = time.perf_counter() - t0

    measured = objs[: objgraph_limit or instances]
    t0 = time.perf_counter()
    lengths = _objgraph_chains(measured, ignore=(id(objs),))
    objgraph_s = (time.perf_counter() - t0) * instances / len(measured)

    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.wait(tasks)
    forget_hidden()
    objs.clear()
    del ballast
    return {
        "case": case,
        "leaklab_s": round(leaklab_s, 3),
        "objgraph_s": round(objgraph_s, 3),
        "speedup_vs_objgraph": round(objgraph_s / leaklab_s, 1),
        "instances": instances,
        "heap_objects": heap_objects,
        # objgraph returns the object alone when it finds no chain to a module
        "objgraph_finds": sum(1 for n in lengths if n > 1),
        "root_kind": report.groups[0].root_kind,
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
    parser.add_argument("--case", choices=("pending", "hidden", "both"), default="both")
    args = parser.parse_args(argv)
    cases = ("pending", "hidden") if args.case == "both" else (args.case,)
    results = [asyncio.run(main(args.heap, args.instances, args.objgraph_sample, case)) for case in cases]
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if not k.startswith("_")} for r in results]))
        return 0
    for result in results:
        print(f"== case {result['case']}: {result['heap_objects']:,} gc-tracked objects, "
              f"{result['instances']} leaked instances")
        print(f"leaklab  (gc.collect + analyze_survivors, all at once): {result['leaklab_s']:.3f} s")
        print(f"         of which gc.collect {result['_collect_s']:.3f} s, analyze_survivors {result['_analyze_s']:.3f} s")
        print(f"         (find_chains alone, no sizes):                 {result['_chains_only_s']:.3f} s")
        print(f"objgraph (find_backref_chain per instance, {result['_objgraph_measured']} timed): {result['objgraph_s']:.3f} s")
        print(f"speed-up: {result['speedup_vs_objgraph']}x")
        print(f"objgraph found a chain for {result['objgraph_finds']} of {result['_objgraph_measured']} "
              f"(chain lengths {result['_objgraph_chain_lengths']})")
        print(f"leaklab root: {result['root_kind']}; chain: {result['_chain']}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
