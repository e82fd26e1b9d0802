"""A leak session: a backend running in-process, driven through cycles, with a
census after every cycle and a retention timeline after the last one.

In JupyterLab the session lives between cells on the kernel's loop::

    session = await LeakSession("reference", faults="C8").start()
    result = await session.run("switch-then-close", cycles=10)
    await session.stop()

Scripts and the CLI use :func:`run`, which owns its event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import gc
import json
import logging
import os
import platform
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from . import probes
from ._compat import task_cancelling
from .driver.client import StepTimeout
from .driver.scenarios import CycleState, Scenario, get_scenario
from .serving import RunningServer, ServerStartError, serve
from .targets import Target, resolve_target
from .targets.base import session_memory_path

logger = logging.getLogger(__name__)

#: Runs are saved under this folder of the current directory, unless
#: ``runs_dir`` or the ``LEAKLAB_RUNS_DIR`` environment variable says otherwise
#: (never inside the installed package).
DEFAULT_RUNS_DIRNAME = "leaklab-runs"
#: With ``step_timeout_s=None``: the bound of every step in the first cycle,
#: before any connect was timed...
FIRST_STEP_TIMEOUT_S = 60.0
#: ...and after: this many times the slowest connect seen, at least
#: ``MIN_STEP_TIMEOUT_S`` and at most ``MAX_STEP_TIMEOUT_S``.
STEP_TIMEOUT_FACTOR = 4.0
MIN_STEP_TIMEOUT_S = 10.0
#: Period of the child-process sampler that runs during each cycle.
CHILD_SAMPLE_S = 0.1
#: After shutdown: how long subprocesses and threads the backend closed may
#: take to end before they count as left behind.
STOP_GRACE_S = 3.0
#: Seconds a process the backend left gets after SIGTERM, before SIGKILL.
REAP_GRACE_S = 2.0
MAX_STEP_TIMEOUT_S = 120.0


def default_runs_dir() -> Path:
    """``$LEAKLAB_RUNS_DIR``, else ``./leaklab-runs`` of the current directory."""
    env = os.environ.get("LEAKLAB_RUNS_DIR")
    return Path(env) if env else Path.cwd() / DEFAULT_RUNS_DIRNAME


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the partial result was kept (``.result``)."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(f"run interrupted after {result.cycles_done} cycles; partial data in {result.path}")
        self.result = result


def save_json_result(result: Any, kind: str, runs_dir: Path | str | None = None) -> Path:
    """Save a hunt's or a comparison's result (anything with ``path`` and
    ``as_dict()``) as ``<runs dir>/<kind>-<stamp>-<id>/<kind>.json``, written
    atomically, its own path in it; ``result.path`` is set."""
    folder = Path(runs_dir) if runs_dir else default_runs_dir()
    folder = folder / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp, result.path = folder / f".{kind}.json.tmp", folder / f"{kind}.json"
    tmp.write_text(json.dumps(result.as_dict(), indent=2, default=str))
    tmp.replace(result.path)
    return result.path


class BackendUnresponsive(RuntimeError):
    """Several cycles in a row failed: the backend crashed or hangs."""


@dataclasses.dataclass
class RunResult:
    """What one run measured. ``records`` and ``timeline`` are plain dicts."""

    run_id: str
    target: str
    scenario: str
    faults: list[str]
    options: dict[str, Any]
    cycles: int
    records: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    expected_growth: tuple[str, ...] = ()
    errors: list[str] = dataclasses.field(default_factory=list)
    failed_cycles: list[int] = dataclasses.field(default_factory=list)
    step_timeout_s: float | None = None
    target_notes: list[str] = dataclasses.field(default_factory=list)
    orphans: dict[str, int] | None = None
    #: watched instances the cycles created that were still alive after the
    #: timeline, by type (counted whatever the slope); ``open``: of them, the
    #: sessions still registered as open (``roles.open_sessions``)
    survivors: dict[str, int] = dataclasses.field(default_factory=dict)
    survivors_open: dict[str, int] = dataclasses.field(default_factory=dict)
    #: processes the backend left running that stopping the session ended
    reaped: list[str] = dataclasses.field(default_factory=list)
    #: RSS before and after asking the allocator to give freed memory back
    #: (``{"available": False}`` where it can't be asked)
    allocator: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the commonest types a gc pass freed after the cycles, summed
    freed_types: dict[str, int] = dataclasses.field(default_factory=dict)
    interrupted: bool = False
    path: Path | None = None
    elapsed_s: float = 0.0

    @property
    def cycles_done(self) -> int:
        return max(0, len(self.records) - 1)

    def frame(self):
        """The census as a DataFrame indexed by cycle."""
        from .analysis import census_frame

        return census_frame(self.records)

    def timeline_frame(self):
        from .analysis import timeline_frame

        return timeline_frame(self.timeline)

    def summary(self) -> RunSummary:
        """Verdicts per metric plus run metadata, typed (``verdict_of``,
        ``judged_cycles`` ...); it reads and serialises as the JSON-ready dict
        (``.as_dict()`` gives that dict)."""
        from .analysis import RunSummary, summarize

        out = summarize(self.records, self.timeline, expected_growth=self.expected_growth,
                        failed_cycles=self.failed_cycles, allocator=self.allocator, freed_types=self.freed_types)
        out.update(
            run_id=self.run_id, target=self.target, scenario=self.scenario, faults=self.faults,
            cycles=self.cycles_done, orphans=self.orphans, reaped=self.reaped, errors=self.errors,
            failed_cycles=self.failed_cycles,
            judged_cycles=self.cycles_done - len(self.failed_cycles),
            survivors={"alive": dict(self.survivors), "open": dict(self.survivors_open)},
            step_timeout_s=_round(self.step_timeout_s), target_notes=self.target_notes,
            interrupted=self.interrupted, elapsed_s=round(self.elapsed_s, 2),
            path=str(self.path) if self.path else None,
        )
        return RunSummary.from_dict(out)


class LeakSession:
    """Runs a target in-process on the caller's loop and measures it.

    Args:
        target: a :class:`Target` or a name :func:`~leaklab.targets.resolve_target`
            takes: ``"reference"``, ``"olv"`` (with ``app_dir``), a target
            file, ``"pkg.module:factory"``.
        app_dir: the app folder of ``"olv"`` (or a target file's override).
        target_file: a target file (instead of ``target``).
        faults: fault ids for the target.
        options: backend options.
        settle_s: wait after each cycle before the census (then ``gc.collect``).
        timeline_s: how long to sample after the last cycle; ``None`` picks
            enough for the target's ``release_s`` and, after half-open
            clients, the running server's ping interval + timeout.
        timeline_step_s: sampling period of the timeline.
        step_timeout_s: bound on every protocol step (a turn gets three
            times it); ``None``: 60 s in the first cycle, then four times the
            slowest connect measured (10-120 s).
        trace_memory: run tracemalloc during the session.
        runs_dir: where runs are saved; ``None``: ``$LEAKLAB_RUNS_DIR`` or
            ``./leaklab-runs``; ``False``: not saved.
        progress: show a progress bar.
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
    """

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
    ) -> None:
        self.measure = measure
        self.collect = collect
        self.shutdown_timeout_s = shutdown_timeout_s
        self._freed: Any = None
        self._freed_types: dict[str, int] = {}
        self.target = resolve_target(target, app_dir=app_dir, target_file=target_file, faults=faults,
                                     options=options, watch=watch)
        if step_timeout_s is not None and not step_timeout_s > 0:
            raise ValueError(f"step_timeout_s must be a positive number of seconds, not {step_timeout_s!r}")
        self.settle_s = settle_s
        self.timeline_s = timeline_s
        self.timeline_step_s = timeline_step_s
        self.step_timeout_s = step_timeout_s
        self.trace_memory = trace_memory
        self.runs_dir = None if runs_dir is False else (Path(runs_dir) if runs_dir else default_runs_dir())
        self._slowest_connect_s = 0.0
        self.progress = progress
        self.app: Any = None
        self.server: RunningServer | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._baseline: Any = None
        self._children: Any = None
        #: what :meth:`stop` ended that the backend left running, one line each
        self.reaped: list[str] = []
        self._tracker: Any = None
        self._calls: Any = None
        #: lifecycle label -> watched type name, for the labels counted per object
        self._lifecycle_types: dict[str, str] = {}
        self._objects_since: tuple[float, dict[str, int]] = (0.0, {})
        self._timers: dict[str, Any] = {}
        self._half_open: list[asyncio.StreamWriter] = []
        self.orphans: dict[str, int] | None = None
        self.orphan_threads: list[str] = []
        self.task_sites: Any = None
        self._run_started = 0.0
        self._started_tracemalloc = False

    # -- lifecycle ----------------------------------------------------------
    async def start(self) -> LeakSession:
        """Install the probes, build the app, start it on 127.0.0.1.

        Raises:
            ServerStartError: the backend did not start.
        """
        if self._stack is not None:
            raise RuntimeError("session already started")
        self._baseline = probes.baseline()
        self._children = probes.ChildWatch(self._baseline)
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            if self.trace_memory and not tracemalloc.is_tracing():
                tracemalloc.start(10)
                self._started_tracemalloc = True
            if self.measure:
                # Where each task was created, for retention chains ("Task ...
                # created at service_context.py:123"); restored at stop().
                self.task_sites = probes.TaskCreationRecorder()
                self.task_sites.install(asyncio.get_running_loop())
                stack.callback(self.task_sites.uninstall)
            types = self.target.resolve_types() if self.measure else {}
            self._tracker = probes.InstanceTracker(types)
            self._tracker.install()
            stack.callback(self._tracker.uninstall)
            lifecycle = self.target.lifecycle if self.measure else {}
            methods = self.target.resolve_methods(lifecycle)
            # A close counts against the object it closes when its class is
            # watched (creations are seen); other labels are counted in calls.
            per_object = _lifecycle_types(methods, types, self._tracker.created_counts())
            self._calls = probes.CallCounter(methods, per_instance=set(per_object), created_at=self._tracker.created_at)
            self._lifecycle_types = {k: per_object[k] for k in self._calls.per_instance_labels()}
            self._calls.install()
            stack.callback(self._calls.uninstall)
            timed = self.target.timed if self.measure else {}
            for label, (owner, name) in self.target.resolve_methods(timed).items():
                timer = probes.TimedMethod(owner, name)
                timer.install()
                stack.callback(timer.uninstall)
                self._timers[label] = timer
            self.app = self.target.make_app()
            self.server = await stack.enter_async_context(
                serve(self.app, uvicorn_options=self.target.uvicorn_options(self.app),
                      shutdown_timeout_s=self.shutdown_timeout_s)
            )
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
        return self

    async def stop(self) -> dict[str, int]:
        """Shut the backend down and count what it left behind (idempotent)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            for writer in self._half_open:
                writer.transport.abort()
            self._half_open.clear()
            await stack.aclose()
            self._after_stop()
            # Let the loop run the transports' close callbacks; subprocesses
            # the backend closed at shutdown get a grace period to exit (and
            # the threads that wait for them to end).
            await asyncio.sleep(0.1)
            deadline = time.monotonic() + STOP_GRACE_S
            left = probes.orphans_after(self._baseline)
            while (left.children or _own_threads(left.thread_names)) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                left = probes.orphans_after(self._baseline)
            self.orphans = left.counts()
            self.orphan_threads = _own_threads(left.thread_names)
            self.orphans["threads"] = len(self.orphan_threads)
            # What the backend started and left running (still our child, or
            # re-parented when its own parent died) does not outlive the
            # session: terminated, then killed after a grace period.
            if self._children is not None and self._children.left():
                self.reaped = await asyncio.to_thread(self._children.reap, REAP_GRACE_S)
                if self.reaped:
                    more = f"; and {len(self.reaped) - 3} more" if len(self.reaped) > 3 else ""
                    logger.warning("leaklab: ended %d process(es) the backend left running: %s%s",
                                   len(self.reaped), "; ".join(self.reaped[:3]), more)
        return self.orphans or {}

    def survivors(self, since: float | None = None) -> dict[str, list[Any]]:
        """Strong references to live watched instances created at or after
        ``since`` (``time.monotonic()``; default: the start of the last run).
        The caller must drop the lists, or they keep the instances alive."""
        since = self._run_started if since is None else since
        out: dict[str, list[Any]] = {}
        for name in self.target.watched_types:
            try:
                objs = self._tracker.instances(name)
            except KeyError:  # a bare class name that was not found
                continue
            objs = [o for o in objs if (self._tracker.created_at(o) or 0.0) >= since]
            if objs:
                out[name] = objs
        return out

    def _count_survivors(self, since: float) -> tuple[dict[str, int], dict[str, int]]:
        """How many of each watched type the run created are alive now
        (after a collection), and how many of the sessions among them are
        still registered as open."""
        gc.collect()
        alive = self.survivors(since)
        try:
            counts = {name: len(objs) for name, objs in alive.items()}
            session_type = self.target.roles.session_type
            open_counts: dict[str, int] = {}
            if session_type in alive and self.app is not None:
                open_ids = self._open_session_ids(self.target.roots(self.app))
                n_open = sum(1 for o in alive[session_type] if id(o) in open_ids)
                if n_open:
                    open_counts[session_type] = n_open
            return counts, open_counts
        finally:
            for objs in alive.values():
                objs.clear()
            alive.clear()

    def instances(self, name: str) -> list[Any]:
        """Strong references to every live instance of the watched type
        ``name`` (empty when it is not watched). The caller must drop the
        list, or it keeps them alive."""
        if self._tracker is None:
            return []
        try:
            return self._tracker.instances(name)
        except KeyError:
            return []

    def resources(self) -> dict[str, Path | None]:
        """The target's resources (cache dir, history store...) of the running app."""
        return dict(self.target.resources(self.app)) if self.app is not None else {}

    def explain(self, since: float | None = None) -> Any:
        """Who keeps the survivors alive: a retention report (chains, roots,
        creation sites, sizes) for the watched instances created since
        ``since`` that are still alive. Holds no reference to them after."""
        from .retention import analyze_survivors

        self.thaw()
        gc.collect()
        survivors = self.survivors(since)
        try:
            return analyze_survivors(survivors, creation_sites=self.task_sites)
        finally:
            survivors.clear()

    async def hunt(self, **kwargs: Any) -> Any:
        """Search this backend's lifecycles for the ones that leak
        (:func:`leaklab.hunt.hunt_async`), screening on this session's backend
        (started; left running); findings are confirmed on fresh ones."""
        from .hunt import hunt_async

        if self._stack is None:
            raise RuntimeError("LeakSession.hunt(): start() the session first")
        return await hunt_async(session=self, **kwargs)

    def compare_with_objgraph(self, type_name: str | None = None, since: float | None = None) -> Any:
        """One survivor seen by objgraph, pympler and leaklab side by side
        (:func:`leaklab.retention.compare_with_objgraph`): of ``type_name``
        (default: the session type if one survived, else the first watched
        type that did), created since ``since``. ``None`` when nothing
        survived. Holds no reference to it after."""
        from .retention import compare_with_objgraph

        self.thaw()
        gc.collect()
        survivors = self.survivors(since)
        try:
            names = [type_name] if type_name else [self.target.roles.session_type, *survivors]
            name = next((n for n in names if n and survivors.get(n)), None)
            if name is None:
                return None
            one = survivors[name][0]
            survivors.clear()
            try:
                return compare_with_objgraph(one, creation_sites=self.task_sites)
            finally:
                del one
        finally:
            survivors.clear()

    def thaw(self) -> None:
        """Give the frozen heap back to the collector (before a retention
        analysis: ``gc.get_referrers`` does not see frozen objects)."""
        gc.unfreeze()

    def _after_stop(self) -> None:
        if self._started_tracemalloc:
            tracemalloc.stop()
            self._started_tracemalloc = False
        self.app = None
        self.server = None
        self._timers = {}
        self.task_sites = None

    async def __aenter__(self) -> LeakSession:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- runs ---------------------------------------------------------------
    async def run(
        self,
        scenario: str | Scenario,
        cycles: int = 10,
        *,
        after_cycles: Callable[[LeakSession], Awaitable[None]] | None = None,
    ) -> RunResult:
        """Drive ``cycles`` cycles of ``scenario``; census after each, timeline after.

        Args:
            scenario: a name or a :class:`Scenario`.
            cycles: how many.
            after_cycles: awaited after the last census and before the
                timeline, while a transient retention still holds (the place
                for a retention analysis).

        Raises:
            RunInterrupted: Ctrl-C or cancellation; partial data kept.
            BackendUnresponsive: three cycles in a row failed.
        """
        if self._stack is None or self.server is None:
            raise RuntimeError("start the session first (await session.start())")
        scen = get_scenario(scenario)
        if cycles < 1:
            raise ValueError("cycles must be >= 1")
        t0 = time.monotonic()
        self._run_started = t0
        result = RunResult(
            run_id=_new_run_id(),
            target=self.target.name,
            scenario=scen.name,
            faults=sorted(self.target.faults),
            options=dict(self.target.options),
            cycles=cycles,
            records=[],
            timeline=[],
            expected_growth=self.target.expected_growth,
            target_notes=self.target_notes(),
        )
        calls_prev = self._calls.snapshot()
        half_open_before = len(self._half_open)
        self._freed_types = result.freed_types
        self._objects_since = (t0, self._tracker.created_counts())
        for timer in self._timers.values():
            timer.take()
        try:
            result.records.append(await self._census(0, t0, None, calls_prev))
            calls_prev = self._calls.snapshot()
            failures = 0
            bar = _progress(cycles, f"{scen.name}", self.progress)
            try:
                for cycle in range(1, cycles + 1):
                    _raise_if_cancel_requested()
                    state = self._cycle_state(cycle)
                    error = await self._run_cycle(scen, state)
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
                    record = await self._census(cycle, t0, state, calls_prev)
                    calls_prev = self._calls.snapshot()
                    result.records.append(record)
                    bar.update(1)
                    if failures >= 3:
                        raise BackendUnresponsive(f"3 cycles in a row failed; last: {error}")
            finally:
                bar.close()
            if after_cycles is not None:
                await after_cycles(self)
            if self.measure:
                result.timeline = await self._timeline(
                    self._timeline_duration(half_open=len(self._half_open) > half_open_before))
                result.survivors, result.survivors_open = self._count_survivors(t0)
                result.allocator = self._trim_probe()
        except (asyncio.CancelledError, KeyboardInterrupt):
            result.interrupted = True
            result.elapsed_s = time.monotonic() - t0
            self._save(result)
            raise RunInterrupted(result) from None
        except BackendUnresponsive:
            result.elapsed_s = time.monotonic() - t0
            self._save(result)
            raise
        result.elapsed_s = time.monotonic() - t0
        self._save(result)
        return result

    def _trim_probe(self) -> dict[str, Any]:
        """After the timeline: how much RSS the allocator gives back when
        asked (glibc ``malloc_trim(0)``): freed memory it held, not objects."""
        trimmed = probes.trim_allocator()
        if trimmed is None:
            return {"available": False}
        return {"available": True, "rss_before_mb": round(trimmed[0], 2), "rss_after_mb": round(trimmed[1], 2)}

    def _cycle_state(self, cycle: int) -> CycleState:
        assert self.server is not None
        return CycleState(
            host=self.server.host,
            port=self.server.port,
            ws_path=self.target.ws_path,
            proxy_path=self.target.proxy_path,
            characters=self.target.characters,
            cycle=cycle,
            timeout_s=self.current_step_timeout(),
        )

    def current_step_timeout(self) -> float:
        """The bound on each step of the next cycle: the one given, or one
        derived from the slowest connect measured so far (a backend that
        starts MCP servers on every connection takes seconds to greet)."""
        if self.step_timeout_s is not None:
            return float(self.step_timeout_s)
        if self._slowest_connect_s <= 0:
            return FIRST_STEP_TIMEOUT_S
        return min(MAX_STEP_TIMEOUT_S, max(MIN_STEP_TIMEOUT_S, STEP_TIMEOUT_FACTOR * self._slowest_connect_s))

    def target_notes(self) -> list[str]:
        """What the target changed or decided to run the backend here (engines
        pointed at the fake, MCP servers skipped...); empty before start."""
        if self.app is None:
            return []
        try:
            return [str(n) for n in self.target.notes(self.app)]
        except Exception as exc:  # notes are informative: never fail a run on them
            return [f"(the target's notes failed: {type(exc).__name__}: {exc})"]

    async def _sample_children(self, state: CycleState) -> None:
        # Child processes a session starts (stdio MCP servers) may be gone by
        # the census: the peak while the cycle runs says they existed.
        while True:
            state.children_peak = max(state.children_peak, self._children.note())
            await asyncio.sleep(CHILD_SAMPLE_S)

    async def _run_cycle(self, scen: Scenario, state: CycleState) -> str | None:
        sampler = asyncio.ensure_future(self._sample_children(state)) if self.measure else None
        try:
            return await self._run_steps(scen, state)
        finally:
            if sampler is not None:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sampler

    async def _run_steps(self, scen: Scenario, state: CycleState) -> str | None:
        try:
            await scen.run_cycle(state)
        except StepTimeout as exc:
            how = "" if self.step_timeout_s is not None else " (derived from the slowest connect)"
            return (f"StepTimeout: {exc}; the step timeout was {state.timeout_s:.0f} s{how}: "
                    "raise it with --step-timeout SECONDS (step_timeout_s=)")
        except (AssertionError, Exception) as exc:
            # A refused handshake, a protocol surprise: the cycle is recorded
            # as failed and the run goes on.
            return f"{type(exc).__name__}: {exc}"
        return None

    # -- measurement --------------------------------------------------------
    async def _settle(self) -> None:
        await asyncio.sleep(self.settle_s)
        self._freed = probes.collect_cyclic() if self.collect else None

    async def _census(self, cycle: int, t0: float, state: CycleState | None, calls_prev: dict[str, int]) -> dict[str, Any]:
        if not self.measure:
            return {"cycle": cycle, "t": round(time.monotonic() - t0, 3)}
        await self._settle()
        rec: dict[str, Any] = {"cycle": cycle, "t": round(time.monotonic() - t0, 3)}
        if self._freed is not None:
            rec["gc_freed_objects"], rec["gc_freed_bytes"] = self._freed.objects, self._freed.bytes
            if cycle > 0:
                for name, n in self._freed.top_types:
                    self._freed_types[name] = self._freed_types.get(name, 0) + n
        rec.update(self._counts())
        alloc = probes.allocator_snapshot()
        rec["allocated_blocks"] = alloc.blocks
        if alloc.uss_mb is not None:
            rec["uss_mb"] = alloc.uss_mb
        res = self.target.resources(self.app) if self.app is not None else {}
        if res.get("history_db") is not None:
            rec["db_rows"], rec["db_bytes"] = probes.sqlite_snapshot(res["history_db"])
        calls = self._calls.snapshot()
        ended = state.sessions_ended if state is not None else 0
        for label, per_session in self.target.lifecycle.items():
            rec[f"lifecycle:{label}"] = calls.get(label, 0) - calls_prev.get(label, 0)
            rec[f"expected:{label}"] = ended
        rec.update(self._lifecycle_objects(state))
        if state is not None and self.measure:
            rec["children_peak"] = max(state.children_peak, rec.get("children") or 0)
        if state is not None and state.connect_s:
            rec["latency_connect_ms"] = 1000 * sum(state.connect_s) / len(state.connect_s)
        if state is not None and state.turns:
            firsts = [t.first_audio_s for t in state.turns if t.first_audio_s is not None]
            ends = [t.chain_end_s for t in state.turns if t.chain_end_s is not None]
            if firsts:
                rec["latency_first_ms"] = 1000 * sum(firsts) / len(firsts)
            if ends:
                rec["latency_end_ms"] = 1000 * sum(ends) / len(ends)
            llm = self._timers.get("llm")
            if llm is not None:
                rec["llm_ms"] = 1000 * llm.take() / len(state.turns)
                if ends:
                    rec["backend_ms"] = rec["latency_end_ms"] - rec["llm_ms"]
        elif "llm" in self._timers:
            self._timers["llm"].take()
        return rec

    def _lifecycle_objects(self, state: CycleState | None) -> dict[str, int]:
        """Per-object lifecycle accounting of the cycle since the previous census.

        For each label counted per object, among the instances of its class
        created since the previous census: ``lifecycle_objects`` (created),
        ``lifecycle_closed`` (the method ran on it, by the end of this
        settle), ``lifecycle_short`` / ``lifecycle_short_calls`` (short-lived:
        the method first ran while its session was still open, i.e. before the
        first disconnect that followed the instance's creation, or with no
        disconnect after it), ``lifecycle_owned`` (session-owned: created, and
        still unclosed at its session's disconnect; an instance still alive
        and unclosed with no disconnect after its creation belongs to a
        session that has not ended and is left out) and ``lifecycle_ran_for``
        (session-owned instances the method ran on after the disconnect).
        With one session per cycle, "its session's disconnect" is the cycle's
        disconnect. Disconnect times are :attr:`CycleState.closed_at`.
        """
        since, created_prev = self._objects_since
        now = time.monotonic()
        created_now = self._tracker.created_counts()
        self._objects_since = (now, created_now)
        disconnects = sorted(state.closed_at) if state is not None else []
        open_after = disconnects[-1] if disconnects else since
        out: dict[str, int] = {}
        for label, name in self._lifecycle_types.items():
            records = self._calls.take_instances(label)  # drained every census
            if name not in created_now:  # switched to a heap scan: creations unseen
                continue
            closed = short = short_calls = ran_for = closed_open = 0
            for r in records:
                if r.created_at is None or not since < r.created_at <= now:
                    continue
                closed += 1
                i = bisect.bisect_left(disconnects, r.created_at)
                if i == len(disconnects) or r.first_at < disconnects[i]:
                    short += 1
                    short_calls += r.calls
                    closed_open += i == len(disconnects) and r.alive
                else:
                    ran_for += 1
            still_open = sum(1 for t in self._tracker.creation_times(name) if max(since, open_after) < t <= now)
            created = created_now[name] - created_prev.get(name, 0)
            out[f"lifecycle_objects:{label}"] = created
            out[f"lifecycle_closed:{label}"] = closed
            out[f"lifecycle_short:{label}"] = short
            out[f"lifecycle_short_calls:{label}"] = short_calls
            out[f"lifecycle_owned:{label}"] = max(0, created - short - max(0, still_open - closed_open))
            out[f"lifecycle_ran_for:{label}"] = ran_for
        return out

    def _counts(self) -> dict[str, Any]:
        """What both the census and the timeline count, so a return to the
        baseline after the last cycle can be seen for each of them."""
        rec: dict[str, Any] = {}
        snap = probes.process_snapshot()
        rec.update(
            rss_mb=snap.rss_mb, fds=snap.fds, threads=snap.threads, children=snap.children,
            gc_objects=snap.gc_objects,
        )
        if snap.tracemalloc_mb is not None:
            rec["tracemalloc_mb"] = snap.tracemalloc_mb
        for name, n in self._tracker.counts().items():
            rec[f"type:{name}"] = n
        tc = probes.task_census()
        rec["tasks"] = tc.total
        for qualname, n in tc.by_coroutine.items():
            rec[f"task:{qualname}"] = n
        res = self.target.resources(self.app) if self.app is not None else {}
        if res.get("cache_dir") is not None:
            rec["cache_files"], rec["cache_bytes"] = probes.dir_snapshot(res["cache_dir"])
        for name, path in res.items():
            # Any other folder a target declares (a JSON history store...):
            # files and bytes, named after it.
            if name != "cache_dir" and name.endswith("_dir") and path is not None:
                stem = name[:-4]
                rec[f"{stem}_files"], rec[f"{stem}_bytes"] = probes.dir_snapshot(path)
        if self.app is not None:
            roots = self.target.roots(self.app)
            # the sessions taken before the walk, so their ids mean them
            sessions = self.instances(self.target.roles.session_type) if self.target.roles.session_memory else []
            try:
                walk = probes.container_census(roots)
                for path, n in walk.lengths.items():
                    rec[f"container:{path}"] = n
                rec.update(self._session_memory(roots, sessions, walk.visited))
            finally:
                sessions.clear()
        return rec

    def _open_session_ids(self, roots: Mapping[str, Any]) -> set[int]:
        """Ids of the sessions registered as open (``roles.open_sessions``,
        a dict of session objects); empty when the role is not declared."""
        path = self.target.roles.open_sessions
        values = getattr(probes.root_path(roots, path), "values", None) if path else None
        try:
            return {id(v) for v in values()} if callable(values) else set()
        except Exception:  # resized by another thread, a hostile mapping
            return set()

    def _session_memory(self, roots: Mapping[str, Any], sessions: list[Any], in_use: frozenset[int]) -> dict[str, int]:
        """What the sessions that ended still hold in their own agents
        (``roles.session_memory`` summed over the live ``roles.session_type``
        instances), apart from the memory every session shares
        (``roles.shared_memory``), from open sessions (in
        ``roles.open_sessions``) and from sessions the app's long-lived
        objects hold (its default context: their containers are counted on
        their own paths). Flat when each session's memory goes with it."""
        roles = self.target.roles
        if not roles.session_type or not roles.session_memory:
            return {}
        if roles.session_type not in self._tracker.counts():
            return {}  # not watched: not measured
        shared = {id(held) for path in roles.shared_memory if (held := probes.root_path(roots, path)) is not None}
        open_ids = self._open_session_ids(roots)
        ended = [s for s in sessions if id(s) not in in_use and id(s) not in open_ids]
        try:
            total = probes.held_by_instances(ended, roles.session_memory, shared)
        finally:
            ended.clear()
        return {f"container:{session_memory_path(roles.session_type, roles.session_memory)}": total}

    def _timeline_duration(self, *, half_open: bool = False) -> float:
        """How long to sample after the last cycle, unless set: long enough
        for what the target says it may hold by design, and, when the run
        left half-open clients, for the server's real ping interval + timeout
        (the server drops them by then, if it ever does)."""
        if self.timeline_s is not None:
            return self.timeline_s
        srv = self.server
        ping = ((srv.ping_interval_s or 0.0) + (srv.ping_timeout_s or 0.0)) if srv is not None and half_open else 0.0
        release = self.target.release_s or 0.0
        return max(3.0, release + 1.5, ping + 1.5)

    async def _timeline(self, duration: float) -> list[dict[str, Any]]:
        samples = []
        start = time.monotonic()
        while True:
            gc.collect()
            t = time.monotonic() - start
            samples.append({"t": round(t, 3), **self._counts()})
            if t >= duration:
                return samples
            await asyncio.sleep(self.timeline_step_s)

    # -- storage ------------------------------------------------------------
    def _save(self, result: RunResult) -> None:
        if self.runs_dir is None:
            return
        result.path = save_run(result, self.runs_dir)


def _lifecycle_types(
    methods: Mapping[str, tuple[type, str]], types: Mapping[str, type], tracked: Mapping[str, int]
) -> dict[str, str]:
    """Lifecycle label -> the watched name of its class (the very class, with
    its creations tracked by weak reference); labels of unwatched classes
    are left out (counted in calls only)."""
    out: dict[str, str] = {}
    for label, (owner, _method) in methods.items():
        name = next((n for n, cls in types.items() if cls is owner and n in tracked), None)
        if name is not None:
            out[label] = name
    return out


def _raise_if_cancel_requested() -> None:
    # Python 3.11's asyncio.wait_for can swallow a cancellation that races
    # with a result; the request stays counted on the task. Honour it at the
    # next cycle boundary instead of running on.
    task = asyncio.current_task()
    if task is not None and task_cancelling(task):
        raise asyncio.CancelledError


def save_run(result: RunResult, runs_dir: Path) -> Path:
    """Write ``census.csv``, ``timeline.csv`` and ``meta.json`` atomically into a
    new folder ``runs_dir/<run_id>``; never overwrites."""
    import pandas as pd

    runs_dir.mkdir(parents=True, exist_ok=True)
    tmp = runs_dir / f".tmp-{result.run_id}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    try:
        pd.DataFrame(result.records).to_csv(tmp / "census.csv", index=False)
        pd.DataFrame(result.timeline).to_csv(tmp / "timeline.csv", index=False)
        meta = {
            "run_id": result.run_id, "target": result.target, "scenario": result.scenario,
            "faults": result.faults, "options": result.options, "cycles": result.cycles,
            "cycles_done": result.cycles_done, "interrupted": result.interrupted, "errors": result.errors,
            "elapsed_s": round(result.elapsed_s, 3), "expected_growth": list(result.expected_growth),
            "failed_cycles": result.failed_cycles, "step_timeout_s": result.step_timeout_s,
            "target_notes": result.target_notes,
            "survivors": {"alive": result.survivors, "open": result.survivors_open},
            "versions": _versions(), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        final = runs_dir / result.run_id
        while final.exists():
            final = runs_dir / f"{result.run_id}-{uuid.uuid4().hex[:4]}"
        os.rename(tmp, final)  # atomic on one filesystem; fails rather than overwrite
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_run(path: Path | str) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Read a saved run: ``(meta, records, timeline)``."""
    import pandas as pd

    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    records = pd.read_csv(path / "census.csv").to_dict("records")
    try:
        timeline = pd.read_csv(path / "timeline.csv").to_dict("records")
    except pd.errors.EmptyDataError:
        timeline = []
    return meta, records, timeline


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("leaklab", "fastapi", "uvicorn", "websockets", "openai", "mcp", "objgraph", "pympler", "pandas"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def _own_threads(names: Any) -> list[str]:
    # The loop's own default-executor threads (``asyncio_N``, used for
    # getaddrinfo) are pooled for the loop's lifetime: not the backend's.
    return [n for n in names if not n.startswith("asyncio_")]


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    # tqdm's monitor thread outlives the bar: it would count as a thread the
    # run left behind.
    tqdm.monitor_interval = 0
    return tqdm(total=total, desc=desc, unit="cycle", leave=False)


async def run_async(
    target: Target | str = "reference",
    scenario: str | Scenario = "chat",
    cycles: int = 10,
    *,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    after_cycles: Callable[[LeakSession], Awaitable[None]] | None = None,
    **session_kwargs: Any,
) -> RunResult:
    """Start a session, run one scenario, stop; the result carries the orphan counts."""
    session = LeakSession(target, faults=faults, options=options, **session_kwargs)
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


def run(*args: Any, **kwargs: Any) -> RunResult:
    """Sync entry point for scripts and the CLI (owns its event loop).

    Raises:
        RunInterrupted: on Ctrl-C, after a clean shutdown, with partial data.
        ServerStartError: the backend did not start.
    """
    return asyncio.run(run_async(*args, **kwargs))


__all__ = [
    "BackendUnresponsive", "LeakSession", "RunInterrupted", "RunResult", "ServerStartError",
    "load_run", "run", "run_async", "save_run",
]
