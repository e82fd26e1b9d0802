"""The checklist's confusion matrix and timing.

    python benchmarks/checklist_matrix.py [--json]

Runs the whole checklist on the reference backend with --faults all, none,
and each fault alone; prints the wall time of each run and, for the single
faults, which items came out confirmed/transient (the diagonal should be the
only hits).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from leaklab.checklist import run_checklist_async

HIT = ("confirmed", "transient")


async def main() -> dict:
    out: dict = {"runs": {}}
    for faults in ["all", "none", *[f"C{i}" for i in range(1, 10)]]:
        started = time.monotonic()
        result = await run_checklist_async("reference", faults=faults, progress=False)
        out["runs"][faults] = {"elapsed_s": round(time.monotonic() - started, 1),
                               "verdicts": {o.id: o.verdict for o in result.outcomes}}
    singles = {f: r["verdicts"] for f, r in out["runs"].items() if f.startswith("C")}
    out["diagonal_hits"] = sum(1 for f, v in singles.items() if v[f] in HIT)
    out["off_diagonal_hits"] = sum(1 for f, v in singles.items() for i, x in v.items() if i != f and x in HIT)
    out["all_ok"] = all(v in HIT for v in out["runs"]["all"]["verdicts"].values())
    out["none_ok"] = all(v in ("ruled_out", "not_applicable") for v in out["runs"]["none"]["verdicts"].values())
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    res = asyncio.run(main())
    if a.json:
        print(json.dumps(res))
    else:
        ids = [f"C{i}" for i in range(1, 10)]
        print("faults  time_s  " + " ".join(f"{i:>3}" for i in ids))
        for f, r in res["runs"].items():
            marks = " ".join(f"{'X' if r['verdicts'][i] in HIT else '.':>3}" for i in ids)
            print(f"{f:<7} {r['elapsed_s']:>6}  {marks}")
        print(f"diagonal hits {res['diagonal_hits']}/9, off-diagonal hits {res['off_diagonal_hits']}, "
              f"all -> every item hit: {res['all_ok']}, none -> nothing hit: {res['none_ok']}")
