"""Detection power and false positives of the per-cycle verdicts.

    python benchmarks/detection.py [--runs 5] [--cycles 10] [--json]

1. A one-object-per-cycle leak (reference backend, C8 with heavy_init_s=inf,
   switch-then-close: one ServiceContext per cycle; and C6, open-close: one
   entry per cycle in a shared engine's dict): the first cycle count at which
   the verdict is ``leak``, judged on prefixes of one 10-cycle census.
2. The fixed reference backend (no faults), ``chat`` repeated ``--runs`` times:
   how many metrics got a ``leak`` or ``transient`` verdict (false positives).
"""

from __future__ import annotations

import argparse
import asyncio
import json

from leaklab.analysis import summarize
from leaklab.session import run_async


def first_flagged(result, metric_path) -> int | None:
    for k in range(2, len(result.records)):
        s = summarize(result.records[: k + 1], result.timeline, expected_growth=result.expected_growth)
        if metric_path(s) == "leak":
            return k
    return None


async def main(args: argparse.Namespace) -> dict:
    out: dict = {"detection": {}, "false_positives": {}}
    r = await run_async("reference", "switch-then-close", args.cycles, faults="C8",
                        options={"heavy_init_s": "inf"}, runs_dir=False, progress=False)
    out["detection"]["ServiceContext (C8, inf)"] = first_flagged(r, lambda s: s["types"]["ServiceContext"]["verdict"])
    r = await run_async("reference", "open-close", args.cycles, faults="C6", runs_dir=False, progress=False)

    def c6(s):
        return next((c["verdict"] for c in s["containers"] if c["path"].endswith("client_streams")), "none")

    out["detection"]["asr_engine.client_streams (C6)"] = first_flagged(r, c6)
    flagged_total = 0
    for i in range(args.runs):
        r = await run_async("reference", "chat", args.cycles, runs_dir=False, progress=False)
        flagged = r.summary()["flagged"]
        out["false_positives"][f"run {i + 1}"] = flagged
        flagged_total += len(flagged)
    out["false_positive_count"] = flagged_total
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    res = asyncio.run(main(a))
    if a.json:
        print(json.dumps(res))
    else:
        for name, k in res["detection"].items():
            print(f"1-object-per-cycle leak {name}: flagged at cycle {k}")
        print(f"fixed backend, {a.runs} chat runs x {a.cycles} cycles: {res['false_positive_count']} leak/transient verdicts")
        for run, flagged in res["false_positives"].items():
            if flagged:
                print(f"  {run}: {flagged}")
