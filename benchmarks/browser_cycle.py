"""A browser cycle beside the synthetic client's: the same cycles, same process, same run.

    python benchmarks/browser_cycle.py [--cycles 10] [--reps 1] [--browser PATH] [--json]

A cycle opens a tab, waits for the greeting and the replies to the page's
requests on open (fetch-backgrounds, fetch-configs, fetch-history-list,
create-new-history), and closes the tab (``connect,close``). Each
repetition runs the cycles on the reference backend once with the synthetic
client (WebSocket clients doing what the page does) and once with the
browser client (the backend's own page in headless Chromium, one browser per
run, one context per tab), each after one warm-up cycle. Only the latency
probe is installed (no collection, no settle wait), so a cycle's time is the
client's and the backend's.

Prints per-cycle ms for each client, the backend's own connect time (the
synthetic run's connect latency: socket open to the greeting and the page's
replies), the browser cycle beyond it (goal <= 2000 ms on a 2-core machine),
and how many times the browser was launched per run (goal: once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics

from leaklab.driver import browser as browser_mod
from leaklab.probes import LatencyProbe
from leaklab.session import LeakSession

SCENARIO = "connect,close"
GOAL_MS = 2000.0


class LaunchCounter:
    """Counts the browsers :class:`~leaklab.driver.browser.BrowserClient`
    launches (a start that finds no browser running)."""

    def __init__(self) -> None:
        self.launches = 0
        self._start = browser_mod.BrowserClient.start

    def __enter__(self) -> LaunchCounter:
        counter, start = self, self._start

        async def counted(client: browser_mod.BrowserClient) -> browser_mod.BrowserClient:
            if client.browser is None:
                counter.launches += 1
            return await start(client)

        browser_mod.BrowserClient.start = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        browser_mod.BrowserClient.start = self._start  # type: ignore[method-assign]


async def one(client: str, cycles: int, browser: str | None) -> dict:
    """``cycles`` timed cycles on a fresh backend: per-cycle ms, connect ms."""
    session = LeakSession("reference", runs_dir=False, progress=False, settle_s=0.0, timeline_s=0.0, collect=False,
                          probes=[LatencyProbe()], client=client, browser=browser)
    with LaunchCounter() as launches:
        await session.start()
        try:
            await session.run(SCENARIO, 1)  # warm-up: imports, the page's first load
            result = await session.run(SCENARIO, cycles)
            tabs = session.browser.tabs_opened if session.browser is not None else None
        finally:
            await session.stop()
    if result.errors:
        raise SystemExit(f"{client}: {result.errors[0]}")
    t = [r["t"] for r in result.records]
    per_cycle = [1000 * (b - a) for a, b in zip(t, t[1:])]
    connect = [r["latency_connect_ms"] for r in result.records[1:] if "latency_connect_ms" in r]
    return {"ms_per_cycle": per_cycle, "connect_ms": connect, "launches": launches.launches, "tabs": tabs}


async def main(args: argparse.Namespace) -> dict:
    runs: dict[str, list[dict]] = {"synthetic": [], "browser": []}
    for _ in range(args.reps):
        for client in ("synthetic", "browser"):
            runs[client].append(await one(client, args.cycles, args.browser))

    def median(client: str, key: str) -> float:
        return statistics.median(v for run in runs[client] for v in run[key])

    synthetic, browser = median("synthetic", "ms_per_cycle"), median("browser", "ms_per_cycle")
    backend_connect = median("synthetic", "connect_ms")
    beyond = browser - backend_connect
    return {
        "scenario": SCENARIO, "cycles": args.cycles, "reps": args.reps,
        "synthetic_ms_per_cycle": round(synthetic, 1), "browser_ms_per_cycle": round(browser, 1),
        "ratio": round(browser / synthetic, 2),
        "backend_connect_ms": round(backend_connect, 1),
        "browser_connect_ms": round(median("browser", "connect_ms"), 1),
        "browser_beyond_connect_ms": round(beyond, 1), "within_goal": beyond <= GOAL_MS,
        "browser_launches_per_run": [run["launches"] for run in runs["browser"]],
        "tabs_per_run": [run["tabs"] for run in runs["browser"]],
        "per_cycle_ms": {c: [[round(v, 1) for v in run["ms_per_cycle"]] for run in rs] for c, rs in runs.items()},
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--cycles", type=int, default=10, help="timed cycles per client and repetition (default 10)")
    p.add_argument("--reps", type=int, default=1, help="repetitions, each client once per repetition (default 1)")
    p.add_argument("--browser", default=None, metavar="PATH", help="the browser (default: chromium... on PATH)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.cycles < 1 or a.reps < 1:
        p.error("--cycles and --reps must be at least 1")
    out = asyncio.run(main(a))
    if a.json:
        print(json.dumps(out))
    else:
        for client in ("synthetic", "browser"):
            for i, cycle_ms in enumerate(out["per_cycle_ms"][client], 1):
                print(f"{client} run {i}: " + " ".join(f"{v:.0f}" for v in cycle_ms) + " ms per cycle")
        print(f"{SCENARIO}: synthetic {out['synthetic_ms_per_cycle']:.0f} ms/cycle, browser "
              f"{out['browser_ms_per_cycle']:.0f} ms/cycle (ratio {out['ratio']:.2f}); backend's own connect "
              f"{out['backend_connect_ms']:.0f} ms (the browser's, page load included: "
              f"{out['browser_connect_ms']:.0f} ms)")
        print(f"browser cycle beyond the backend's connect: {out['browser_beyond_connect_ms']:.0f} ms "
              f"({'within' if out['within_goal'] else 'over'} the goal of <= {GOAL_MS:.0f} ms); browser launched "
              f"{', '.join(map(str, out['browser_launches_per_run']))} time(s) per run, "
              f"tabs {', '.join(map(str, out['tabs_per_run']))} (one context each, the warm-up's included)")
