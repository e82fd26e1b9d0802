"""The checklist's confusion matrix and timing, on two backends.

    python benchmarks/checklist_matrix.py [--backend reference|olv|both] [--jobs N] [--json]

For each backend, runs the whole checklist with every fault on, none, and
each fault alone, and prints the wall time of each run and a mark per item:
``X`` confirmed, ``t`` transient, ``?`` inconclusive, ``-`` not applicable,
``.`` ruled out. A right matrix has a hit (X, or t where the cause releases
by itself) on the diagonal and no ``X`` off it. The two backends name their
parts differently (leaklab's reference backend and the upstream-shaped app
in tests/attach/olv_app, whose causes are planted the way that code base
would have them, switched by OLV_APP_FAULTS): the rules are the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from leaklab.checklist import run_checklist_async

ROOT = Path(__file__).resolve().parents[1]
OLV_APP = ROOT / "tests" / "attach" / "olv_app"
IDS = [f"C{i}" for i in range(1, 10)]
MARK = {"confirmed": "X", "transient": "t", "inconclusive": "?", "not_applicable": "-", "ruled_out": "."}


async def _checklist(backend: str, faults: str, jobs: int | None) -> dict:
    started = time.monotonic()
    if backend == "reference":
        result = await run_checklist_async("reference", faults=faults, progress=False, jobs=jobs)
    else:
        # The app runs as it is: its planted causes are switched in its own
        # environment variable, inherited by the experiments' processes. Its
        # proxy is on in conf.proxy.yaml (upstream: system_config.enable_proxy).
        os.environ["OLV_APP_FAULTS"] = faults
        options = {"conf": "conf.proxy.yaml"} if (OLV_APP / "conf.proxy.yaml").exists() else {}
        try:
            result = await run_checklist_async("olv", app_dir=OLV_APP, options=options, progress=False, jobs=jobs)
        finally:
            os.environ.pop("OLV_APP_FAULTS", None)
    return {"elapsed_s": round(time.monotonic() - started, 1),
            "verdicts": {o.id: o.verdict for o in result.outcomes},
            "answers": {o.id: o.evidence.get("answer") for o in result.outcomes}}


def _score(runs: dict) -> dict:
    singles = {f: r["verdicts"] for f, r in runs.items() if f in IDS}
    hit = ("confirmed", "transient")
    return {
        "diagonal_hits": sum(1 for f, v in singles.items() if v.get(f) in hit),
        "off_diagonal_confirmed": sum(1 for f, v in singles.items() for i, x in v.items() if i != f and x == "confirmed"),
        "all_hit": sum(1 for v in runs["all"]["verdicts"].values() if v in hit),
        "none_confirmed": sum(1 for v in runs["none"]["verdicts"].values() if v == "confirmed"),
    }


async def main(backends: list[str], jobs: int | None, rows: list[str]) -> dict:
    out: dict = {}
    for backend in backends:
        runs = {}
        for faults in rows:
            runs[faults] = await _checklist(backend, faults, jobs)
        out[backend] = {"runs": runs, **(_score(runs) if {"all", "none"} <= set(runs) else {})}
    return out


def show(res: dict) -> None:
    for backend, data in res.items():
        print(f"\n{backend}")
        print("faults  time_s  " + " ".join(f"{i:>3}" for i in IDS))
        for f, r in data["runs"].items():
            marks = " ".join(f"{MARK.get(r['verdicts'].get(i), ' '):>3}" for i in IDS)
            print(f"{f:<7} {r['elapsed_s']:>6}  {marks}")
        if "diagonal_hits" in data:
            print(f"diagonal hits {data['diagonal_hits']}/9, confirmed off the diagonal {data['off_diagonal_confirmed']}, "
                  f"all -> {data['all_hit']}/9 hit, none -> {data['none_confirmed']} confirmed")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["reference", "olv", "both"], default="both")
    p.add_argument("--jobs", type=int, default=None, help="experiments at a time (default: the checklist's, 3)")
    p.add_argument("--rows", default="all,none," + ",".join(IDS), help="fault sets to run (comma list)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    chosen = ["reference", "olv"] if a.backend == "both" else [a.backend]
    res = asyncio.run(main(chosen, a.jobs, a.rows.split(",")))
    print(json.dumps(res)) if a.json else show(res)
