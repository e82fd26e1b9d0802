"""Census overhead: the same scenario with and without the census, same process, same run.

    python benchmarks/census_overhead.py [--scenario chat] [--cycles 8] [--reps 3] [--json]

Each repetition runs the cycles once with every probe installed and a census
after each cycle (gc.collect, instance/task/process/file/container counts,
lifecycle and timing wrappers), and once with no probe and no census; modes
alternate so machine noise hits both. The census's deliberate settle wait
(``settle_s``) is set to 0 here: it is waiting, not work. Prints the ratio of
median cycle times (goal <= 1.05).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from leaklab.session import LeakSession


async def one(scenario: str, cycles: int, measure: bool) -> float:
    session = LeakSession("reference", runs_dir=False, progress=False, measure=measure, settle_s=0.0, timeline_s=0.0)
    await session.start()
    try:
        await session.run(scenario, 1)  # warm-up: imports, first MCP start
        started = time.perf_counter()
        await session.run(scenario, cycles)
        return (time.perf_counter() - started) / cycles
    finally:
        await session.stop()


async def main(args: argparse.Namespace) -> dict:
    with_census, without = [], []
    for _ in range(args.reps):
        without.append(await one(args.scenario, args.cycles, False))
        with_census.append(await one(args.scenario, args.cycles, True))
    w, wo = statistics.median(with_census), statistics.median(without)
    return {
        "scenario": args.scenario, "cycles": args.cycles, "reps": args.reps,
        "with_census_s_per_cycle": round(w, 4), "without_census_s_per_cycle": round(wo, 4),
        "ratio": round(w / wo, 3),
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--scenario", default="chat")
    p.add_argument("--cycles", type=int, default=8)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    out = asyncio.run(main(a))
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{out['scenario']}: {out['with_census_s_per_cycle']*1000:.1f} ms/cycle with census, "
              f"{out['without_census_s_per_cycle']*1000:.1f} ms/cycle without: ratio {out['ratio']:.3f} (goal <= 1.05)")
