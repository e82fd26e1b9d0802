"""The session: a backend running in-process on the caller's loop, driven
through cycles, with a census after every cycle and a timeline after the
last one."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import probes
from ..analysis.lifetimes import OUTLIVED_SLACK_S
from ..driver.scenarios import CycleState, Scenario, get_scenario
from ..probes import Probe, ProbeContext
from ..serving import RunningServer, ServerStartError, serve
from ..targets import Target, resolve_target
from .census import Census, allocator_after, timeline_duration
from .cycles import progress_bar, raise_if_cancel_requested, run_steps
from .options import RunOptions, option, step_timeout
from .runs import (
    BackendUnresponsive,
    RunInterrupted,
    RunResult,
    default_runs_dir,
    new_run_id,
    save_run,
)
from .stopping import cancel_app_tasks, left_behind, pending_now, sample_children
from .survivors import SurvivorQueries

__all__ = ["LeakSession"]

#: Cycles in a row that may fail before the backend counts as unresponsive.
MAX_FAILED_IN_A_ROW = 3
#: What opens a tab: WebSocket clients doing what the page does, or the page itself in a browser.
CLIENTS = ("synthetic", "browser")


class LeakSession(SurvivorQueries):
    """Runs a target in-process on the caller's loop and measures it.

    Args:
        target: a :class:`Target` or a name :func:`~leaklab.targets.resolve_target`
            takes: ``"reference"``, ``"olv"`` (with ``app_dir``), a target
            file, ``"pkg.module:factory"``.
        app_dir: the app folder of ``"olv"`` (or a target file's override).
        target_file: a target file (instead of ``target``).
        faults: fault ids for the target.
        options: backend options.
        settle_s, timeline_s, timeline_step_s, step_timeout_s, progress: the
            session's default :class:`RunOptions` (see there; a run may be
            given others).
        runs_dir: where runs are saved; ``None``: ``$LEAKLAB_RUNS_DIR`` or
            ``./leaklab-runs``; ``False``: not saved.
        trace_memory: run tracemalloc during the session.
        measure: ``False`` drives the cycles with no probe installed and no
            census (the baseline of ``benchmarks/census_overhead.py``).
        watch: more types to count, ``{name: "module:Qualname" or "ClassName"}``.
        collect: ``True`` (default): a full collection before every census,
            counting what it freed (``gc_freed_objects``/``gc_freed_bytes``:
            what only a gc pass frees); ``False``: automatic collection left
            as the backend has it (the census then counts garbage not yet
            collected, and RSS shows what the cycles cost as they run).
        shutdown_timeout_s: bound on the server's shutdown at :meth:`stop`
            (half of it graceful: handlers still running are then cancelled).
        probes: the census' probes (default: a fresh one of each of
            :data:`leaklab.probes.PROBES`).
        client: ``"synthetic"`` (default: WebSocket clients doing what the
            page does) or ``"browser"``: each tab a real page of the
            backend's own ``frontend/`` in headless Chromium (Playwright, a
            browser already installed; ``pip install 'leaklab[browser]'``).
        browser: the browser to run (a path); default the first of
            ``chromium``, ``google-chrome``, ``msedge`` found.
    """

    settle_s = option("settle_s")
    timeline_s = option("timeline_s")
    timeline_step_s = option("timeline_step_s")
    step_timeout_s = option("step_timeout_s")
    progress = option("progress")
    runs_dir = option("runs_dir")

    def __init__(
        self,
        target: Target | str = "reference",
        *,
        app_dir: str | os.PathLike[str] | None = None,
        target_file: str | os.PathLike[str] | None = None,
        faults: Any = None,
        options: Mapping[str, Any] | None = None,
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
        probes: Sequence[Probe] | None = None,
        client: str = "synthetic",
        browser: str | os.PathLike[str] | None = None,
    ) -> None:
        self.measure = measure
        self.collect = collect
        self.shutdown_timeout_s = shutdown_timeout_s
        self.target = resolve_target(target, app_dir=app_dir, target_file=target_file, faults=faults,
                                     options=options, watch=watch)
        #: the default options of :meth:`run`
        self.options = RunOptions(
            settle_s=settle_s, timeline_s=timeline_s, timeline_step_s=timeline_step_s, step_timeout_s=step_timeout_s,
            progress=progress,
            runs_dir=None if runs_dir is False else (Path(runs_dir) if runs_dir else default_runs_dir()),
        )
        self.trace_memory = trace_memory
        self.context = ProbeContext(self.target)
        self._probes = probes
        self.census: Census | None = None
        self._slowest_connect_s = 0.0
        self.app: Any = None
        self.server: RunningServer | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._baseline: Any = None
        self._children: Any = None
        #: what :meth:`stop` ended that the backend left running, one line each
        self.reaped: list[str] = []
        self._half_open: list[asyncio.StreamWriter] = []
        self._before_cycles: Any = ()
        if client not in CLIENTS:
            raise ValueError(f"client must be one of {', '.join(CLIENTS)}, not {client!r}")
        self.client = client
        self.browser_path = browser
        #: the started browser (``client="browser"``), while the session runs
        self.browser: Any = None
        self._cancelled: list[str] = []
        self._sites_at_stop: Any = None
        self.orphans: dict[str, int] | None = None
        self.orphan_threads: list[str] = []
        #: threads left at stop that are idle workers of a library's pool (not counted)
        self.idle_threads: list[str] = []
        self._run_started = 0.0
        self._started_tracemalloc = False

    # -- lifecycle ----------------------------------------------------------
    async def start(self) -> LeakSession:
        """Install the probes, build the app, start it on 127.0.0.1.

        Raises:
            ServerStartError: the backend did not start.
            PageMissing: ``client="browser"`` and the backend's page folder
                is missing or has no ``index.html`` (nothing was started).
        """
        if self._stack is not None:
            raise RuntimeError("session already started")
        if self.client == "browser":
            from ..driver.browser import check_page

            check_page(self.target.page_dir, self.target.page_hint)
        self._baseline = probes.baseline()
        self._children = probes.ChildWatch(self._baseline, skip=self.context.foreign_roots)
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            if self.trace_memory and not tracemalloc.is_tracing():
                tracemalloc.start(10)
                self._started_tracemalloc = True
            if self.measure:
                chosen = self._probes if self._probes is not None else probes.default_probes()
                self.census = Census(chosen, self.context, collect=self.collect)
                self.census.install(stack)
            self.app = self.context.app = self.target.make_app()
            state = getattr(self.app, "state", None)
            if state is not None:
                # An attached app whose target tears down a working folder at
                # shutdown calls this after the app's own shutdown, before the
                # folder goes (see :meth:`stop`).
                state.leaklab_before_close = self._cancel_app_tasks
            self.server = await stack.enter_async_context(
                serve(self.app, uvicorn_options=self.target.uvicorn_options(self.app),
                      shutdown_timeout_s=self.shutdown_timeout_s)
            )
            if self.client == "browser":
                from ..driver.browser import BrowserClient

                # One browser for the whole session; closed before the server
                # stops (the exit stack runs backwards). Its processes are the
                # kit's: never counted, never reaped as the backend's.
                self.browser = await BrowserClient(self.browser_path).start()
                stack.push_async_callback(self.browser.close)
                self.context.foreign_roots.update(self.browser.pids())
            if self.measure and gc.get_freeze_count() == 0:
                # Every census runs a full collection. Moving the heap that
                # exists now (libraries, the started backend) to the permanent
                # generation makes each collection traverse only what the
                # cycles allocated; stop() (or thaw()) moves it back.
                gc.collect()
                gc.freeze()
                stack.callback(gc.unfreeze)
        except BaseException as exc:
            # An attached app can leave the real reason of a failed start-up
            # (uvicorn only says "exit 3") on its state.
            startup_error = getattr(getattr(self.app, "state", None), "leaklab_startup_error", None)
            await stack.aclose()
            self._after_stop()
            if isinstance(exc, ServerStartError) and startup_error is not None:
                raise startup_error from exc
            raise
        self._stack = stack
        self._before_cycles = pending_now()
        return self

    async def stop(self) -> dict[str, int]:
        """Shut the backend down and count what it left behind (idempotent)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            for writer in self._half_open:
                writer.transport.abort()
            self._half_open.clear()
            self._cancelled, self._sites_at_stop = [], self.context.task_sites
            await stack.aclose()
            # Nothing of the app may run after stop(): what its own shutdown
            # did not end is cancelled now (or already, by an attached app's
            # shutdown, before its working folder went).
            await self._cancel_app_tasks()
            self._after_stop()
            left = await left_behind(self._baseline, self._children, skip=self.context.foreign_roots)
            self.orphans, self.orphan_threads, self.idle_threads = left.orphans, left.threads, left.idle
            self.reaped = [*self._cancelled, *left.reaped]
        return self.orphans or {}

    async def _cancel_app_tasks(self) -> None:
        """Cancel the app's tasks still pending (:func:`~leaklab.session.stopping.cancel_app_tasks`);
        what was cancelled is reported at :meth:`stop`."""
        self._cancelled.extend(await cancel_app_tasks(self._before_cycles, self._sites_at_stop))

    def _after_stop(self) -> None:
        if self._started_tracemalloc:
            tracemalloc.stop()
            self._started_tracemalloc = False
        self.app = self.context.app = None
        self.server = None
        self.context.task_sites = None

    async def __aenter__(self) -> LeakSession:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def resources(self) -> dict[str, Path | None]:
        """The target's resources (cache dir, history store...) of the running app."""
        return dict(self.target.resources(self.app)) if self.app is not None else {}

    def target_notes(self) -> list[str]:
        """What the target changed or decided to run the backend here (engines
        pointed at the fake, MCP servers skipped...); empty before start."""
        if self.app is None:
            return []
        try:
            return [str(n) for n in self.target.notes(self.app)]
        except Exception as exc:  # notes are informative: never fail a run on them
            return [f"(the target's notes failed: {type(exc).__name__}: {exc})"]

    def current_step_timeout(self, options: RunOptions | None = None) -> float:
        """The bound on each step of the next cycle (of a run with ``options``,
        default the session's): the one given, or one derived from the
        slowest connect measured so far."""
        return step_timeout(options or self.options, self._slowest_connect_s)

    # -- runs ---------------------------------------------------------------
    async def run(
        self,
        scenario: str | Scenario,
        cycles: int = 10,
        *,
        options: RunOptions | None = None,
        after_cycles: Callable[[LeakSession], Awaitable[None]] | None = None,
    ) -> RunResult:
        """Drive ``cycles`` cycles of ``scenario``; census after each, timeline after.

        Args:
            scenario: a name, a step list (``"connect,switch,close"``), a scenario
                file (``leaklab record`` writes one) or a :class:`Scenario`.
            cycles: how many.
            options: this run's settings (default: the session's ``options``).
            after_cycles: awaited after the last census and before the
                timeline, while a transient retention still holds (the place
                for a retention analysis).

        Raises:
            RunInterrupted: Ctrl-C or cancellation; partial data kept.
            BackendUnresponsive: three cycles in a row failed.
        """
        if self._stack is None or self.server is None:
            raise RuntimeError("start the session first (await session.start())")
        opts = options or self.options
        scen = get_scenario(scenario)
        if cycles < 1:
            raise ValueError("cycles must be >= 1")
        t0 = time.monotonic()
        self._run_started = t0
        result = RunResult(
            run_id=new_run_id(), target=self.target.name, scenario=scen.name, faults=sorted(self.target.faults),
            options=dict(self.target.options), cycles=cycles, records=[], timeline=[],
            expected_growth=self.target.expected_growth, target_notes=self.target_notes(),
        )
        half_open_before = len(self._half_open)
        disconnects: list[float] = []
        if self.census is not None:
            self.census.begin(t0, result.freed_types)
        try:
            result.records.append(await self._census(0, t0, None, opts))
            failures = 0
            bar = progress_bar(cycles, f"{scen.name}", opts.progress)
            try:
                for cycle in range(1, cycles + 1):
                    raise_if_cancel_requested()
                    state = self._cycle_state(cycle, opts)
                    error = await self._run_cycle(scen, state, opts)
                    # plain tuples of strings: nothing the census would count as the app's objects
                    result.sent.append(tuple((r.step, tuple(r.sent)) for r in state.step_log))
                    if state.connect_s:
                        self._slowest_connect_s = max(self._slowest_connect_s, *state.connect_s)
                    result.step_timeout_s = state.timeout_s
                    if error:
                        result.errors.append(f"cycle {cycle}: {error}")
                        result.failed_cycles.append(cycle)
                        failures += 1
                    else:
                        failures = 0
                    self._half_open.extend(state.half_open)
                    disconnects.extend(state.closed_at)
                    result.records.append(await self._census(cycle, t0, state, opts))
                    bar.update(1)
                    if failures >= MAX_FAILED_IN_A_ROW:
                        raise BackendUnresponsive(f"3 cycles in a row failed; last: {error}")
            finally:
                bar.close()
            if after_cycles is not None:
                await after_cycles(self)
            if self.census is not None:
                half_open = len(self._half_open) > half_open_before
                result.timeline = await self.census.timeline(
                    timeline_duration(opts, self.target, self.server, half_open=half_open), opts.timeline_step_s)
                result.survivors, result.survivors_open = self.count_survivors(t0)
                result.lifetimes = self.lifetimes(t0, disconnects, opts.settle_s + OUTLIVED_SLACK_S)
                result.details = self.census.details()
                result.allocator = allocator_after()
        except (asyncio.CancelledError, KeyboardInterrupt):
            result.interrupted = True
            result.elapsed_s = time.monotonic() - t0
            self._save(result, opts)
            raise RunInterrupted(result) from None
        except BackendUnresponsive:
            result.elapsed_s = time.monotonic() - t0
            self._save(result, opts)
            raise
        result.elapsed_s = time.monotonic() - t0
        self._save(result, opts)
        return result

    async def _census(self, cycle: int, t0: float, state: CycleState | None, opts: RunOptions) -> dict[str, Any]:
        if self.census is None:
            return {"cycle": cycle, "t": round(time.monotonic() - t0, 3)}
        return await self.census.take(cycle, t0, state, opts.settle_s)

    def _cycle_state(self, cycle: int, opts: RunOptions) -> CycleState:
        assert self.server is not None
        return CycleState(
            host=self.server.host, port=self.server.port, ws_path=self.target.ws_path,
            proxy_path=self.target.proxy_path, characters=self.target.characters, cycle=cycle,
            timeout_s=self.current_step_timeout(opts), browser=self.browser,
        )

    async def _run_cycle(self, scen: Scenario, state: CycleState, opts: RunOptions) -> str | None:
        sampler = asyncio.ensure_future(sample_children(self._children, state)) if self.measure else None
        try:
            return await run_steps(scen, state, opts)
        finally:
            if sampler is not None:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sampler

    @staticmethod
    def _save(result: RunResult, opts: RunOptions) -> None:
        if opts.runs_dir is not None:
            result.path = save_run(result, opts.runs_dir)
