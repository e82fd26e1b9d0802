"""What tracing a fix's lines costs: the same unit, traced and untraced.

    python benchmarks/fix_tracing.py [--scenario switch | --item C8] [--cycles 5] [--heavy-init 3]
                                     [--mechanism sys.monitoring|import hook|settrace] [--json]

The upstream-shaped test app (tests/attach/olv_app, MCP off, C9 on, a
background init on every switch) with the checklist's proposed C8 fix
written in: its hunks in ``handle_config_switch``, ``close()`` and
``__init__``. The unit runs once untraced and once under the line tracer
over the changed file only (:mod:`leaklab.compare.linetrace`:
``sys.monitoring`` on 3.12+, the changed files compiled with counters
before; ``--mechanism settrace`` for the scoped trace function), each in a
fresh process, one after the other, as a comparison's after side runs it
(:func:`leaklab.compare.worker.run_unit_or_error`). Prints the ratio of the
unit's wall times (goal <= 1.2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "attach" / "olv_app"
SERVICE = Path("src") / "open_llm_vtuber" / "service_context.py"
FIX = (
    ("                asyncio.create_task(self._finish_heavy_init(heavy))\n",
     "                task = asyncio.create_task(self._finish_heavy_init(heavy))\n"
     "                self._init_tasks.append(task)\n"),
    ("        await self._cancel_background_tasks()\n        if self.mcp_client is not None:\n",
     "        await self._cancel_background_tasks()\n"
     "        for task in self._init_tasks:\n            task.cancel()\n"
     "        if self.mcp_client is not None:\n"),
    ("        self._background_tasks: set[asyncio.Task[None]] = set()\n",
     "        self._background_tasks: set[asyncio.Task[None]] = set()\n"
     "        self._init_tasks: list[asyncio.Task[None]] = []\n"),
)


def make_apps(folder: Path) -> tuple[Path, Path]:
    """The original (MCP off) and a copy with the proposed fix."""
    before, after = folder / "before", folder / "after"
    shutil.copytree(APP, before, ignore=shutil.ignore_patterns("__pycache__"))
    conf = before / "conf.yaml"
    conf.write_text(conf.read_text().replace("use_mcpp: true", "use_mcpp: false"))
    shutil.copytree(before, after)
    code = (after / SERVICE).read_text()
    for old, new in FIX:
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    (after / SERVICE).write_text(code)
    return before, after


def one(spec: dict) -> None:
    """In a child: the unit, timed, its wall time and trace printed as JSON."""
    from leaklab.compare.worker import run_unit_or_error

    started = time.perf_counter()
    record = asyncio.run(run_unit_or_error(spec))
    print(json.dumps({"elapsed_s": time.perf_counter() - started, "error": record.get("error"),
                      "fix_trace": record.get("fix_trace")}))


def run(spec: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, __file__, "--one"], input=json.dumps(spec), capture_output=True, text=True,
                          env=env, check=True, timeout=900)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(args: argparse.Namespace) -> dict:
    from leaklab.compare.fixlines import find_change, trace_plan

    os.environ.setdefault("OLV_APP_FAULTS", "C9")
    os.environ.setdefault("OLV_APP_HEAVY_INIT_S", str(args.heavy_init))
    with tempfile.TemporaryDirectory(prefix="leaklab-fix-tracing-") as tmp:
        before, after = make_apps(Path(tmp))
        change = find_change(before, after)
        plan = trace_plan(change, "after")
        spec = {"target": "olv", "app_dir": str(after), "cycles": args.cycles, "session": {},
                **({"item": args.item} if args.item else {"scenario": args.scenario})}
        untraced = run(spec)
        traced = run({**spec, "trace": plan, "trace_mechanism": args.mechanism})
    if untraced["error"] or traced["error"]:
        raise SystemExit(f"a run failed: {untraced['error'] or traced['error']}")
    files = (traced["fix_trace"] or {}).get("files") or {}
    return {"scenario": args.item or args.scenario, "cycles": args.cycles, "python": sys.version.split()[0],
            "mechanism": (traced["fix_trace"] or {}).get("mechanism"), "hunks": len(change.hunks),
            "untraced_s": round(untraced["elapsed_s"], 2), "traced_s": round(traced["elapsed_s"], 2),
            "ratio": round(traced["elapsed_s"] / untraced["elapsed_s"], 3),
            "lines_ran": {Path(p).name: f["lines"] for p, f in files.items()}}


if __name__ == "__main__":
    if "--one" in sys.argv:
        one(json.loads(sys.stdin.read()))
        sys.exit(0)
    p = argparse.ArgumentParser()
    p.add_argument("--scenario", default="switch")
    p.add_argument("--item", default=None, help="a checklist experiment instead of a scenario (C8)")
    p.add_argument("--cycles", type=int, default=5)
    p.add_argument("--mechanism", default=None,
                   help="sys.monitoring (3.12+), import hook or settrace (default: the first on 3.12+, else the second)")
    p.add_argument("--heavy-init", type=float, default=3.0)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    out = main(a)
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{out['scenario']} x{out['cycles']} on Python {out['python']} ({out['mechanism']}, {out['hunks']} hunks): "
              f"{out['untraced_s']:.2f} s untraced, {out['traced_s']:.2f} s traced, ratio {out['ratio']:.3f} "
              f"(goal <= 1.2); lines ran: {out['lines_ran']}")
