"""Where the event loop's time goes: how late it runs, what held it, what it ran.

One probe, :class:`LoopWatch`, installed on the running loop:

* a **heartbeat** on the loop (``call_later`` every ``period_ms``) measures
  how late each beat runs (``time.perf_counter``): the worst lag, the stalls
  (a beat later than ``threshold_ms``) and the time they blocked the loop;
* a daemon **helper thread** (``leaklab-loopwatch``) reads the loop thread's
  stack with ``sys._current_frames()`` at ``hz`` (no ``sys.setprofile``, no
  tracing): folded per function it is the cycle's profile
  (:mod:`.stacks`); the samples taken while a stall lasted are the stall's
  stacks, and the code that held the loop is their most frequent innermost
  frame of the app, with its callers up to the loop step that ran it;
* CPU: the process's (``time.process_time``, less the helper thread's own),
  its child processes' (psutil, recursive; plus reaped children), and
  :meth:`LoopWatch.idle_cpu`, what burns while nothing should run.

Per task: the sampler attributes each sample to the **outermost coroutine
frame** of the loop step on the stack (the task's coroutine, named by its
qualname like :func:`~leaklab.probes.task_label`) or, for a plain callback,
its function. The frame walk was chosen over reading
``asyncio.current_task(loop)`` from the helper thread: it describes the very
stack sampled at that instant (the current task read separately could have
changed in between), it names callbacks that are no task, and it reads
nothing of asyncio's current-task bookkeeping from another thread (an
implementation detail, not thread-safe by contract).

Limits of sampling from a thread under the GIL: the helper thread gets the
GIL when the loop thread releases it (its selector poll, a blocking call) or
after the interpreter's switch interval, and on a loaded machine the OS may
run it only when the loop thread blocks. While a watch runs the switch
interval is 1 ms (:data:`SWITCH_INTERVAL_S`, Python's default is 5 ms;
restored at uninstall), so CPU-bound work of a few ms is sampled where it
runs rather than at the next I/O after it; the interval between samples is
random around ``1/hz`` so they do not lock on to a periodic pattern of the
loop (its heartbeat, a timer). A blocking call (``time.sleep``, file or
socket I/O, a lock) is sampled well, CPU-bound runs of a few ms too, but
many short steps are under-sampled in favour of the selector poll between
them: a poll with callbacks ready is counted for the task it runs next (see
:func:`_ready_label`). Each sample weighs the time since the previous one.

Cost (2-core shared machine, Python 3.11): about 0.7 % of a core for the
heartbeat at 10 ms and 0.7 % for the sampler at 100 Hz; ``take()`` a few ms
(psutil's child scan). See ``benchmarks/loop_overhead.py``.

Observer effect: no frame is kept past the sample that read it (frames become
tuples of strings and ints at once); the code objects seen are cached only
until the next :meth:`LoopWatch.take`; the helper thread is always joined at
:meth:`LoopWatch.uninstall`.

Protocol: ``install(loop)`` on the loop's thread before the cycles,
``take()`` after each cycle (what happened since the previous take),
``columns(timing)`` for the record, ``uninstall()`` at the end.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any


from .loop_timing import (
    CycleTiming,
    IdleCpu,
    Stall,
    StepTiming,
    app_stall,
    assign_stalls,
    children_cpu_delta,
    children_cpu_snapshot,
    step_timings,
    timing_columns,
)
from .stacks import default_owner, fold, owner_kind, owner_label

#: The coroutine label of a loop poll whose next ready callback is the kit's
#: own task: left out with the kit's samples when the watch skips them.
KIT_LABEL = "<leaklab>"

__all__ = [
    "DEFAULT_THRESHOLD_MS",
    "THREAD_NAME",
    "CycleTiming",
    "IdleCpu",
    "LoopWatch",
    "Stall",
    "StepTiming",
    "app_stall",
    "assign_stalls",
    "children_cpu_delta",
    "children_cpu_snapshot",
    "step_timings",
    "timing_columns",
]

THREAD_NAME = "leaklab-loopwatch"
DEFAULT_THRESHOLD_MS = 20.0
#: The interpreter's thread switch interval while a watch runs (restored at
#: uninstall; Python's default is 5 ms): at most this long before the helper
#: thread gets the GIL from CPU-bound code on the loop.
SWITCH_INTERVAL_S = 0.001

_CO_COROUTINE = inspect.CO_COROUTINE
# Frames of the loop's own machinery: where a step starts, where the loop waits.
_STEP = ("asyncio.events", "_run")  # Handle._run (co_name: 3.10 has no co_qualname)
_RUN_ONCE = ("asyncio.base_events", "_run_once")
_IDLE_MODULES = ("selectors",)

Frame = tuple  # (module, function, file, line, first_line)
Sample = tuple  # (t, ms, stack | None (idle), coroutine)


class LoopWatch:
    """Heartbeat + stack sampler of one event loop's thread.

    Args:
        threshold_ms: a beat later than this is a stall.
        period_ms: the heartbeat's period.
        hz: samples per second of the loop thread's stack (100-200).
        profile: sample all along (``False``: only while the loop is late,
            enough for the stalls' stacks; no profile).
        owner_of: module name -> owner (a label, or a ``(kind, name)`` pair
            such as ``leaklab.retention``'s ``owner_of_module``); default
            :func:`~leaklab.probes.stacks.default_owner`.
        max_stalls: stalls kept per take, longest first.
        max_depth: frames read per sample, innermost first.
        children: measure the child processes' CPU.
        max_samples: samples kept between two takes (more are dropped: a
            watch never taken does not grow without bound).
        switch_interval_s: the interpreter's switch interval while the watch
            runs (:data:`SWITCH_INTERVAL_S`; ``None``: left as it is).
    """

    def __init__(
        self,
        *,
        threshold_ms: float = DEFAULT_THRESHOLD_MS,
        period_ms: float = 10.0,
        hz: float = 100.0,
        profile: bool = True,
        owner_of: Callable[[str], Any] | None = None,
        max_stalls: int = 20,
        max_depth: int = 128,
        children: bool = True,
        max_samples: int = 100_000,
        skip: Callable[[tuple[Any, ...]], bool] | None = None,
        switch_interval_s: float | None = SWITCH_INTERVAL_S,
    ) -> None:
        if not threshold_ms > 0 or not period_ms > 0 or not hz > 0:
            raise ValueError("threshold_ms, period_ms and hz must be positive")
        self.threshold_ms = threshold_ms
        self.period_s = period_ms / 1000
        self.interval_s = 1.0 / hz
        self.profile = profile
        self.owner_of = owner_of or default_owner
        self.max_stalls = max_stalls
        self.max_depth = max_depth
        self.children = children
        self.max_samples = max_samples
        #: a sampled stack (outermost frame first) that is not to be counted:
        #: the caller's own work on the same loop (left out of stalls and profile)
        self.skip = skip
        self.switch_interval_s = switch_interval_s
        self._switch_saved: tuple[float, float] | None = None  # (the process's, ours)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_tid = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._buf: list[Sample] = []
        self._codes: dict[Any, tuple] = {}
        self._frames: dict[tuple, Frame] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._beat = 0.0  # perf_counter of the last beat (read by the helper thread)
        self._own_cpu = 0.0  # the helper thread's CPU so far (written by it)
        self._worst = 0.0
        self._stall_events: list[tuple[float, float, float]] = []  # (start, end, lag_s)
        self._t_install = 0.0
        self._t_take = 0.0
        self._cpu0 = self._loop_cpu0 = 0.0
        self._own0 = 0.0
        self._kids0: tuple[dict[int, float], float] = ({}, 0.0)
        self._owners: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------
    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> LoopWatch:
        """Start on ``loop`` (default: the running one). Call it on the
        loop's thread: that thread is the one sampled."""
        if self._thread is not None:
            raise RuntimeError("LoopWatch is already installed")
        running = asyncio.get_running_loop()
        loop = loop or running
        if loop is not running:
            raise RuntimeError("install() must run on the loop's own thread")
        self._loop = loop
        self._loop_tid = threading.get_ident()
        now = time.perf_counter()
        self._t_install = self._t_take = now
        self._cpu0, self._loop_cpu0 = time.process_time(), time.thread_time()
        self._own0 = self._own_cpu = 0.0
        self._kids0 = self._children_snapshot()
        self._worst = 0.0
        self._stall_events = []
        self._buf = []
        self._beat = now
        self._due = now + self.period_s
        self._handle = loop.call_later(self.period_s, self._tick)
        self._stop.clear()
        if self.switch_interval_s is not None and self.switch_interval_s < sys.getswitchinterval():
            # The helper thread gets the GIL from CPU-bound code only when the
            # interpreter asks for a switch: a shorter interval samples short
            # CPU-bound work where it runs, not at the next I/O after it.
            was = sys.getswitchinterval()
            sys.setswitchinterval(self.switch_interval_s)
            self._switch_saved = (was, sys.getswitchinterval())
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()
        return self

    start = install

    def uninstall(self, timeout: float = 5.0) -> None:
        """Stop the heartbeat, join the helper thread, drop what was not
        taken (idempotent)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._stop.set()
        saved, self._switch_saved = self._switch_saved, None
        if saved is not None and sys.getswitchinterval() == saved[1]:
            sys.setswitchinterval(saved[0])  # as it was (unless someone else changed it meanwhile)
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"{THREAD_NAME} did not stop within {timeout} s")
        self._codes, self._frames = {}, {}
        with self._lock:
            self._buf = []
        self._stall_events = []
        self._loop = None

    stop = uninstall

    @property
    def installed(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> LoopWatch:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # -- the heartbeat (on the loop) -----------------------------------------------
    def _tick(self) -> None:
        now = time.perf_counter()
        lag = max(0.0, now - self._due)
        if lag > self._worst:
            self._worst = lag
        if lag * 1000 > self.threshold_ms:
            self._stall_events.append((self._due - self.period_s, now, lag))
        self._beat = now
        if self._loop is not None and not self._stop.is_set():
            self._due = now + self.period_s
            self._handle = self._loop.call_later(self.period_s, self._tick)

    # -- the helper thread -----------------------------------------------------------
    def _run(self) -> None:
        tid = self._loop_tid
        late_s = self.period_s + min(self.threshold_ms / 1000, 0.005) / 2
        last = time.perf_counter()
        stop, sleep, interval = self._stop, time.sleep, self.interval_s
        jitter = random.Random(0x1EAC).random
        while True:
            # cheaper than Event.wait; the stop is seen within 1.5 intervals. A
            # random interval (mean ``interval``) keeps the samples from locking
            # on to a periodic pattern of the loop (its own heartbeat, a timer).
            sleep(interval * (0.5 + jitter()))
            if stop.is_set():
                break
            now = time.perf_counter()
            ms = (now - last) * 1000
            last = now
            if self.profile or now - self._beat > late_s:
                frame = sys._current_frames().get(tid)
                if frame is not None:
                    stack, coro = self._read(frame)
                    del frame
                    with self._lock:
                        if len(self._buf) < self.max_samples:
                            self._buf.append((now, ms, stack, coro))
            self._own_cpu = time.thread_time()

    @staticmethod
    def _meta(f: Any, codes: dict[Any, tuple]) -> tuple:
        code = f.f_code
        module = f.f_globals.get("__name__") or ""
        qual = getattr(code, "co_qualname", code.co_name)
        meta = codes[code] = (module, qual, code.co_filename, code.co_firstlineno,
                              bool(code.co_flags & _CO_COROUTINE), (module, code.co_name))
        return meta

    def _read(self, frame: Any) -> tuple[tuple[Frame, ...] | None, str]:
        """The loop step's stack (outermost first; ``None``: the loop waits
        in its selector) and its coroutine."""
        codes, frames = self._codes, self._frames
        meta = codes.get(frame.f_code) or self._meta(frame, codes)
        if meta[0] in _IDLE_MODULES:  # fast path: the loop waiting, no walk
            back = frame.f_back
            if back is not None and (codes.get(back.f_code) or self._meta(back, codes))[5] == _RUN_ONCE \
                    and not getattr(self._loop, "_ready", None):
                return None, ""
        out: list[Frame] = []
        coros: list[int] = []
        step_at = run_once_at = -1
        f = frame
        while f is not None and len(out) < self.max_depth:
            code = f.f_code
            meta = codes.get(code) or self._meta(f, codes)
            line = f.f_lineno or 0
            fr = frames.get((code, line))
            if fr is None:
                fr = frames[(code, line)] = (meta[0], meta[1], meta[2], line, meta[3])
            if meta[4]:
                coros.append(len(out))
            if meta[5] == _STEP and step_at < 0:
                step_at = len(out)
            elif meta[5] == _RUN_ONCE and run_once_at < 0:
                run_once_at = len(out)
            out.append(fr)
            f = f.f_back
        del f
        ready = None
        if out and out[0][0] in _IDLE_MODULES and run_once_at >= 0:
            ready = getattr(self._loop, "_ready", None)
            if not ready:
                return None, ""  # waiting in the selector
        if step_at >= 0:  # the step: the frames below Handle._run
            inner = out[:step_at]
        elif run_once_at >= 0:  # the loop's own work
            inner = out[: run_once_at + 1]
        else:
            inner = out
        in_step = [i for i in coros if i < len(inner)]
        if in_step:
            coro = inner[in_step[-1]][1]  # innermost first: the last is the outermost
        elif ready:
            coro = _ready_label(ready)
        elif inner:
            coro = inner[-1][1]
        else:
            coro = "<loop>"
        inner.reverse()
        return tuple(inner), coro

    # -- reading ------------------------------------------------------------------
    def _owner(self, module: str) -> str:
        label = self._owners.get(module)
        if label is None:
            try:
                label = owner_label(self.owner_of(module))
            except Exception:
                label = "unknown"
            self._owners[module] = label
        return label

    def take(self, windows: Iterable[tuple[str, float, float]] = ()) -> CycleTiming:
        """What happened since the previous take (or the install). Call it
        on the loop's thread.

        Args:
            windows: ``(step, start, end)`` (``time.perf_counter()``) of the
                steps run since: what the loop did inside each is
                :attr:`CycleTiming.steps`.
        """
        if self._loop is None:
            raise RuntimeError("LoopWatch is not installed")
        now = time.perf_counter()
        cpu, loop_cpu = time.process_time(), time.thread_time()
        own = self._own_cpu
        late = now - self._due
        if late * 1000 > self.threshold_ms:
            # a stall whose beat has not run yet (the step calling take() was
            # ready before the beat's timer): counted now, the beat measures from here
            self._stall_events.append((self._due - self.period_s, now, late))
            self._worst = max(self._worst, late)
            self._due = self._beat = now
        kids = self._children_snapshot()
        beat = self._beat
        with self._lock:
            buf = self._buf
            # samples after the last beat may belong to a stall whose beat is still to come
            keep = [s for s in buf if s[0] > beat]
            self._buf = keep
        if keep:
            buf = buf[: len(buf) - len(keep)]
        events, self._stall_events = self._stall_events, []
        worst, self._worst = self._worst, 0.0
        self._codes, self._frames = {}, {}
        if self.skip is not None:
            buf = [s for s in buf if s[2] is None or (s[3] != KIT_LABEL and not self.skip(s[2]))]
        stalls = assign_stalls(events, buf, self._owner, origin=self._t_install)
        steps = step_timings(windows, stalls, buf, self._owner, origin=self._t_install)
        stalls.sort(key=lambda s: -s.lag_ms)
        busy = [s for s in buf if s[2] is not None]
        prof = fold([s[2] for s in busy], weights=[s[1] for s in busy], owner_of=self._owner)
        coroutines: Counter[str] = Counter()
        for s in busy:
            coroutines[s[3]] += s[1]
        timing = CycleTiming(
            wall_s=now - self._t_take,
            worst_lag_ms=worst * 1000,
            blocked_ms=sum((e[2] for e in events), 0.0) * 1000,
            stalls=len(events),
            stall_list=tuple(stalls[: self.max_stalls]),
            profile=prof,
            busy_ms=prof.ms,
            idle_ms=sum((s[1] for s in buf if s[2] is None), 0.0),
            samples=len(buf),
            cpu_s=max(0.0, (cpu - self._cpu0) - (own - self._own0)),
            children_cpu_s=children_cpu_delta(self._kids0, kids),
            own_cpu_s=own - self._own0,
            loop_cpu_s=loop_cpu - self._loop_cpu0,
            coroutines=dict(coroutines.most_common()),
            steps=steps,
        )
        self._t_take, self._cpu0, self._own0, self._kids0, self._loop_cpu0 = now, cpu, own, kids, loop_cpu
        return timing

    sample = take

    def columns(self, timing: CycleTiming, **kwargs: Any) -> dict[str, float]:
        """:func:`timing_columns` of ``timing``."""
        return timing_columns(timing, **kwargs)

    async def idle_cpu(self, seconds: float = 1.0) -> IdleCpu:
        """Sleep ``seconds`` on the loop and measure the CPU burnt meanwhile
        (tasks left spinning; what they ran, if the watch samples)."""
        k0 = self._children_snapshot()  # the child scan outside the window measured
        with self._lock:
            buf0, n0 = self._buf, len(self._buf)
        t0, c0, o0 = time.perf_counter(), time.process_time(), self._own_cpu
        await asyncio.sleep(seconds)
        t1, c1, o1 = time.perf_counter(), time.process_time(), self._own_cpu
        with self._lock:
            samples = list(self._buf[n0:] if self._buf is buf0 else self._buf)
        k1 = self._children_snapshot()
        wall = t1 - t0
        cpu = max(0.0, (c1 - c0) - (o1 - o0))
        busy = [s for s in samples if s[2] is not None and t0 < s[0] <= t1
                and (self.skip is None or (s[3] != KIT_LABEL and not self.skip(s[2])))]
        coroutines: Counter[str] = Counter()
        for s in busy:
            coroutines[s[3]] += s[1]
        return IdleCpu(wall, cpu, cpu / wall if wall > 0 else 0.0, children_cpu_delta(k0, k1),
                       dict(coroutines.most_common()),
                       fold([s[2] for s in busy], weights=[s[1] for s in busy], owner_of=self._owner))

    def _children_snapshot(self) -> tuple[dict[int, float], float]:
        if not self.children:
            return {}, 0.0
        return children_cpu_snapshot()


def _ready_label(ready: Any) -> str:
    """Who a poll with callbacks ready works for: the coroutine of the first
    ready handle's task (or its callback's qualname).

    asyncio's loops poll their selector with a zero timeout while callbacks
    are ready (``loop._ready``) and release the GIL there, which is where a
    sampling thread most often gets it: a task that yields often (a spinning
    ``await asyncio.sleep(0)``) is mostly sampled in that poll, so the poll
    is counted for the task it runs next. Read under the GIL, best effort.
    """
    try:
        cb = getattr(ready[0], "_callback", None)
        owner = getattr(cb, "__self__", None)
        coro = owner.get_coro() if isinstance(owner, asyncio.Task) else None
        code = getattr(coro, "cr_code", None) or getattr(getattr(cb, "__func__", cb), "__code__", None)
        if code is not None and owner_kind(default_owner(code.co_filename)) == "leaklab":
            return KIT_LABEL  # the kit's own task runs next: the poll is not the app's
        name = getattr(coro, "__qualname__", None) or getattr(cb, "__qualname__", None)
        return str(name) if name else "<loop>"
    except Exception:
        return "<loop>"
