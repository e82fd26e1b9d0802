"""Loop watch overhead and stall catch rate, on the reference backend's cycles.

    python benchmarks/loop_overhead.py [--scenario chat] [--cycles 1] [--rounds 16] [--runs 10] [--json]

Overhead: one session of the reference backend (no census: ``measure=False``,
no settle wait), cycles driven in blocks of ``--cycles`` with the
:class:`~leaklab.probes.LoopWatch` installed on the running loop (heartbeat
+ stack sampler, a ``take()`` after each cycle, as a session would) and
without it; the order of the two blocks alternates from round to round so
machine noise hits both (blocks of one cycle by default: the install and
the join cost about a millisecond). Prints the ratio of median wall time per
cycle (goal <= 1.05), of the fastest cycles (the least disturbed by other
processes on a shared machine) and of the process's CPU per cycle (the
helper thread's included).

Catch rate: ``--runs`` cycles with the watch on, each with one 50 ms
``time.sleep`` in a named function (``_blocking_read``) at a random moment
of the cycle, from a task on the loop; a run counts when a stall of that take
is attributed to ``_blocking_read`` with its file and line (goal >= 9/10).
Then the process's CPU during one idle second after the cycles.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import random
import statistics
import time

from leaklab.probes import LoopWatch
from leaklab.session import LeakSession


def _blocking_read() -> None:
    time.sleep(0.05)  # the stall to catch


BLOCK_LINE = inspect.getsourcelines(_blocking_read)[1] + 1


async def _stall_later(delay: float) -> None:
    await asyncio.sleep(delay)
    _blocking_read()


async def _cycle(session: LeakSession, scenario: str, watch: LoopWatch | None) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    await session.run(scenario, 1)
    if watch is not None:
        watch.columns(watch.take())
    return time.perf_counter() - t, time.process_time() - c


async def main(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    session = LeakSession("reference", runs_dir=False, progress=False, measure=False, settle_s=0.0, timeline_s=0.0)
    await session.start()
    try:
        await session.run(args.scenario, 1)  # warm-up: imports, first MCP start
        on: list[tuple[float, float]] = []
        off: list[tuple[float, float]] = []
        for r in range(args.rounds):
            for watched in ((True, False) if r % 2 == 0 else (False, True)):
                if watched:
                    with LoopWatch() as watch:
                        on += [await _cycle(session, args.scenario, watch) for _ in range(args.cycles)]
                else:
                    off += [await _cycle(session, args.scenario, None) for _ in range(args.cycles)]
        caught, lags = 0, []
        cycle_s = statistics.median(w for w, _ in off)
        with LoopWatch() as watch:
            for _ in range(args.runs):
                watch.take()
                stall = asyncio.create_task(_stall_later(rng.uniform(0.0, 0.8 * cycle_s)))
                await session.run(args.scenario, 1)
                await stall
                hits = [s for s in watch.take().stall_list if s.function.endswith("._blocking_read")
                        and s.file == __file__ and s.line == BLOCK_LINE]
                caught += bool(hits)
                lags += [round(s.lag_ms, 1) for s in hits]
            idle = await watch.idle_cpu(1.0)
    finally:
        await session.stop()
    wall_on, wall_off = statistics.median(w for w, _ in on), statistics.median(w for w, _ in off)
    cpu_on, cpu_off = statistics.median(c for _, c in on), statistics.median(c for _, c in off)
    return {
        "scenario": args.scenario, "cycles_per_mode": len(on), "rounds": args.rounds,
        "with_watch_s_per_cycle": round(wall_on, 4), "without_s_per_cycle": round(wall_off, 4),
        "ratio": round(wall_on / wall_off, 3),
        "min_ratio": round(min(w for w, _ in on) / min(w for w, _ in off), 3),
        "cpu_with_watch_s_per_cycle": round(cpu_on, 4), "cpu_without_s_per_cycle": round(cpu_off, 4),
        "cpu_ratio": round(cpu_on / cpu_off, 3),
        "stall_runs": args.runs, "stalls_caught": caught, "caught_lag_ms": lags,
        "idle_cpu_ratio": round(idle.ratio, 4),
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--scenario", default="chat")
    p.add_argument("--cycles", type=int, default=1, help="cycles per block")
    p.add_argument("--rounds", type=int, default=16, help="rounds of one block on, one block off")
    p.add_argument("--runs", type=int, default=10, help="runs of the 50 ms stall")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    out = asyncio.run(main(a))
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{out['scenario']}: {out['with_watch_s_per_cycle']*1000:.1f} ms/cycle with the loop watch, "
              f"{out['without_s_per_cycle']*1000:.1f} ms/cycle without ({out['cycles_per_mode']} cycles each): "
              f"ratio {out['ratio']:.3f} (goal <= 1.05); fastest cycles' ratio {out['min_ratio']:.3f}")
        print(f"process CPU: {out['cpu_with_watch_s_per_cycle']*1000:.1f} ms/cycle with, "
              f"{out['cpu_without_s_per_cycle']*1000:.1f} ms/cycle without: ratio {out['cpu_ratio']:.3f}")
        print(f"50 ms stall caught and attributed to _blocking_read (file:line) in {out['stalls_caught']}/"
              f"{out['stall_runs']} runs (goal >= 9/10); lags {out['caught_lag_ms']} ms")
        print(f"idle CPU after the cycles: {out['idle_cpu_ratio']:.3f} of a core")
