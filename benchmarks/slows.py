"""Detection power and false positives of the ``slows`` verdict of the
event loop's time per function (``time:<module.function>``).

    python benchmarks/slows.py [--runs 5] [--cycles 10] [--ms 2] [--work cpu|io]
                               [--scenario chat] [--part both|false|detection] [--json]

1. False slows: the fixed reference backend (``--faults none``), ``--scenario``
   repeated ``--runs`` times: how many functions and loop timings were
   judged ``slows`` in each run (goal: 0), and how many ``inconclusive``
   (the machine's own slow-down, measured by the ``calibration_ms``
   control, explained their growth). The reply times are listed apart: the
   fixed reference's LLM call does get slower over the first sessions (its
   prompt carries the recalled history, up to ``history_limit`` rows, and
   the fake LLM answers 20 ms slower per 1000 prompt characters).
2. Detection: the reference backend with ``slow_ms_per_session=--ms`` (each
   connection does ``--ms`` ms more synchronous work on the loop than the one
   before, in ``websocket_handler.scan_earlier_sessions``; ``--work cpu``
   pure Python, which the sampler catches worse under the GIL, or ``io`` a
   blocking wait), ``--runs`` runs:
   whether that function is judged ``slows`` (and leads ``time.slows``) within
   ``--cycles`` cycles, and the first cycle count at which it is (judged on
   prefixes of the run's census).

Numbers are measured in one run of this script; on a shared machine say so.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from leaklab import metrics
from leaklab.analysis.latency import timing_stats
from leaklab.analysis.time import time_summary
from leaklab.backend.websocket_handler import scan_earlier_sessions
from leaklab.metrics import Kind, Verdict
from leaklab.session import run_async

#: The function the ``slow_ms_per_session`` option runs (``module.function``).
SCAN = f"{scan_earlier_sessions.__module__}.{scan_earlier_sessions.__qualname__}"


def _slow_counts(summary: dict) -> dict:
    time = summary.get("time") or {}
    lat = summary.get("latency_ms") or {}
    replies = [k for k, v in {"reply": lat, **{k: v for k, v in lat.items() if isinstance(v, dict)}}.items()
               if v.get("verdict") == Verdict.SLOWS]
    loop = [k for k, v in (time.get("loop") or {}).items() if v.get("verdict") == Verdict.SLOWS]
    return {"functions": list(time.get("slows") or []), "callers": sorted(time.get("callers") or {}),
            "loop": loop, "replies": replies, "inconclusive": list(time.get("inconclusive") or []),
            "control": (time.get("control") or {}).get("note") or ""}


def first_slows(result, key: str) -> int | None:
    """The first cycle count at which ``key`` is judged ``slows``."""
    loop = result.details.get("loop")
    for k in range(3, len(result.records)):
        if key in (time_summary(result.records[: k + 1], loop).get("slows") or []):
            return k
    return None


def main(args: argparse.Namespace) -> dict:
    # one event loop a run, started on leaklab's own coroutine: a coroutine of
    # this script on the loop would be sampled as the app's code
    out: dict = {"false": [], "detection": []}
    for _ in range(args.runs if args.part in ("both", "false") else 0):
        r = asyncio.run(run_async("reference", args.scenario, args.cycles, faults="none", runs_dir=False,
                                  progress=False))
        out["false"].append(_slow_counts(r.summary()))
    for _ in range(args.runs if args.part in ("both", "detection") else 0):
        r = asyncio.run(run_async("reference", args.scenario, args.cycles, runs_dir=False, progress=False,
                                  options={"slow_ms_per_session": args.ms, "slow_work": args.work}))
        time = r.summary().get("time") or {}
        column = metrics.name(Kind.TIME, SCAN)
        frame = r.frame()
        # the summary lists the functions that slow and the costliest; else its census column, unjudged
        f = (time.get("functions") or {}).get(SCAN) or timing_stats(
            frame[frame.index >= 1][column] if column in frame.columns else None)
        out["detection"].append({
            "verdict": f.get("verdict") if column in frame.columns else "never sampled",
            "per_cycle": f.get("per_cycle"), "leads": (time.get("slows") or [None])[0] == SCAN,
            "first_cycle": first_slows(r, SCAN), "other_slows": [k for k in time.get("slows") or [] if k != SCAN],
            "callers": sorted(k for k, c in (time.get("callers") or {}).items() if c == SCAN),
        })
    out["false_slows_total"] = sum(len(x["functions"]) + len(x["loop"]) for x in out["false"])
    out["detected"] = sum(d["verdict"] == Verdict.SLOWS for d in out["detection"])
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cycles", type=int, default=10)
    p.add_argument("--ms", type=float, default=2.0, help="ms more per session in the detection runs")
    p.add_argument("--work", choices=("cpu", "io"), default="cpu",
                   help="that work: pure Python (cpu) or a blocking wait (io)")
    p.add_argument("--scenario", default="chat")
    p.add_argument("--part", choices=("both", "false", "detection"), default="both")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    res = main(a)
    if a.json:
        print(json.dumps(res, default=str))
    else:
        if res["false"]:
            print(f"fixed reference, {a.runs} {a.scenario} runs x {a.cycles} cycles: "
                  f"{res['false_slows_total']} slows verdicts (goal 0)")
        for i, x in enumerate(res["false"], 1):
            print(f"  run {i}: {len(x['functions'])} functions, {len(x['loop'])} loop timings slow "
                  f"{x['functions'] + x['loop'] or ''}; {len(x['inconclusive'])} inconclusive {x['control']}; "
                  f"reply times slow (the recalled history grows: by design): {x['replies']}")
        if res["detection"]:
            print(f"{a.ms:g} ms more per session ({SCAN}, {a.work}): judged slows within {a.cycles} cycles in "
                  f"{res['detected']}/{a.runs} runs")
        for i, d in enumerate(res["detection"], 1):
            print(f"  run {i}: {'yes' if d['verdict'] == Verdict.SLOWS else 'no'} ({d['verdict']}, "
                  f"{d['per_cycle'] if d['per_cycle'] is None else round(d['per_cycle'], 2)} ms/cycle, "
                  f"leads: {d['leads']}, first at cycle {d['first_cycle']}, {len(d['callers'])} callers slow with it); "
                  f"other slows: {d['other_slows']}")
