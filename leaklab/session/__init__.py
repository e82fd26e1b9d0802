"""A leak session: a backend running in-process, driven through cycles, with a
census after every cycle and a retention timeline after the last one.

In JupyterLab the session lives between cells on the kernel's loop::

    session = await LeakSession("reference", faults="C8").start()
    result = await session.run("switch-then-close", cycles=10)
    await session.stop()

Scripts and the CLI use :func:`run`, which owns its event loop.

The parts, one job each::

    core        LeakSession: start, run (cycles, census, timeline), stop
    options     RunOptions: the settings of one run (frozen)
    census      the census: a loop over the registered probes (leaklab.probes)
    stopping    what the backend left behind at stop; ending what it left running
    survivors   who is still alive after a run; explain, compare_with_objgraph
    runs        RunResult; save_run, load_run, versions; hunt's and compare's JSON
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from ..driver.scenarios import Scenario
from ..serving import ServerStartError
from ..targets import Target
from .census import Census
from .core import LeakSession
from .options import (
    FIRST_STEP_TIMEOUT_S,
    MAX_STEP_TIMEOUT_S,
    MIN_STEP_TIMEOUT_S,
    STEP_TIMEOUT_FACTOR,
    RunOptions,
)
from .runs import (
    DEFAULT_RUNS_DIRNAME,
    BackendUnresponsive,
    RunInterrupted,
    RunResult,
    default_runs_dir,
    load_run,
    save_json_result,
    save_run,
    versions,
)
from .stopping import CHILD_SAMPLE_S, REAP_GRACE_S, STOP_GRACE_S

__all__ = [
    "CHILD_SAMPLE_S", "DEFAULT_RUNS_DIRNAME", "FIRST_STEP_TIMEOUT_S", "MAX_STEP_TIMEOUT_S", "MIN_STEP_TIMEOUT_S",
    "REAP_GRACE_S", "STEP_TIMEOUT_FACTOR", "STOP_GRACE_S",
    "BackendUnresponsive", "Census", "LeakSession", "RunInterrupted", "RunOptions", "RunResult", "ServerStartError",
    "default_runs_dir", "load_run", "run", "run_async", "save_json_result", "save_run", "versions",
]


async def run_async(
    target: Target | str = "reference",
    scenario: str | Scenario = "chat",
    cycles: int = 10,
    *,
    app_dir: str | os.PathLike[str] | None = None,
    target_file: str | os.PathLike[str] | None = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    after_cycles: Callable[[LeakSession], Awaitable[None]] | None = None,
    settle_s: float = 0.3,
    timeline_s: float | None = None,
    timeline_step_s: float = 0.25,
    step_timeout_s: float | None = None,
    trace_memory: bool = False,
    runs_dir: Path | str | bool | None = None,
    progress: bool = True,
    measure: bool = True,
    watch: Mapping[str, str] | None = None,
    collect: bool = True,
    shutdown_timeout_s: float = 10.0,
    client: str = "synthetic",
    browser: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Start a session, run one scenario, stop; the result carries the orphan counts.

    The arguments after ``after_cycles`` are :class:`LeakSession`'s.
    """
    session = LeakSession(
        target, app_dir=app_dir, target_file=target_file, faults=faults, options=options, settle_s=settle_s,
        timeline_s=timeline_s, timeline_step_s=timeline_step_s, step_timeout_s=step_timeout_s,
        trace_memory=trace_memory, runs_dir=runs_dir, progress=progress, measure=measure, watch=watch,
        collect=collect, shutdown_timeout_s=shutdown_timeout_s, client=client, browser=browser)
    await session.start()
    try:
        result = await session.run(scenario, cycles, after_cycles=after_cycles)
    except RunInterrupted as exc:
        exc.result.orphans = await session.stop()
        exc.result.reaped = list(session.reaped)
        raise
    finally:
        orphans = await session.stop()
    result.orphans = orphans
    result.reaped = list(session.reaped)
    return result


def run(
    target: Target | str = "reference",
    scenario: str | Scenario = "chat",
    cycles: int = 10,
    *,
    app_dir: str | os.PathLike[str] | None = None,
    target_file: str | os.PathLike[str] | None = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    after_cycles: Callable[[LeakSession], Awaitable[None]] | None = None,
    settle_s: float = 0.3,
    timeline_s: float | None = None,
    timeline_step_s: float = 0.25,
    step_timeout_s: float | None = None,
    trace_memory: bool = False,
    runs_dir: Path | str | bool | None = None,
    progress: bool = True,
    measure: bool = True,
    watch: Mapping[str, str] | None = None,
    collect: bool = True,
    shutdown_timeout_s: float = 10.0,
    client: str = "synthetic",
    browser: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Sync entry point for scripts and the CLI (owns its event loop): start a
    session on ``target``, run ``cycles`` cycles of ``scenario``, stop.

    The arguments are :func:`run_async`'s and :class:`LeakSession`'s.

    Raises:
        RunInterrupted: on Ctrl-C, after a clean shutdown, with partial data.
        ServerStartError: the backend did not start.
    """
    return asyncio.run(run_async(
        target, scenario, cycles, faults=faults, options=options, after_cycles=after_cycles, app_dir=app_dir,
        target_file=target_file, settle_s=settle_s, timeline_s=timeline_s, timeline_step_s=timeline_step_s,
        step_timeout_s=step_timeout_s, trace_memory=trace_memory, runs_dir=runs_dir, progress=progress,
        measure=measure, watch=watch, collect=collect, shutdown_timeout_s=shutdown_timeout_s, client=client,
        browser=browser,
    ))
