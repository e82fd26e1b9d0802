"""What the loop watch measured, as data: the records (:class:`Stall`,
:class:`CycleTiming`, :class:`IdleCpu`), the stalls matched to the stacks
sampled while they lasted, the children's CPU, and a cycle's flat census
columns. Pure functions of samples (no thread, no loop): tested on
synthetic ones."""

from __future__ import annotations

import bisect
import dataclasses
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psutil

from .. import metrics
from ..metrics import Kind
from .stacks import Profile, default_owner, frame_key, owner_kind

__all__ = ["CycleTiming", "IdleCpu", "Stall", "StepTiming", "app_stall", "assign_stalls", "children_cpu_delta",
           "children_cpu_snapshot", "step_timings", "timing_columns"]

Frame = tuple  # (module, function, file, line, first_line)
Sample = tuple  # (t, ms, stack | None (idle), coroutine)


@dataclasses.dataclass(frozen=True)
class Stall:
    """The loop held for longer than the threshold.

    Attributes:
        lag_ms: how late the heartbeat ran (the time the loop was held).
        ended_s: when it ended, seconds since :meth:`LoopWatch.install`.
        samples: stacks sampled while it lasted.
        function: ``"module.function"`` of the code that held the loop: the
            most frequent innermost frame of the app among the samples
            (``""``: no sample caught it).
        file, line: where in it (the line it was on).
        owner: the owner label of that code.
        coroutine: the task's coroutine (or the callback) of the loop step.
        stack: the callers, from the loop step down to ``function``
            (``(module, function, file, line)``, outermost first).
    """

    lag_ms: float
    ended_s: float
    samples: int
    function: str
    file: str
    line: int
    owner: str
    coroutine: str
    stack: tuple[tuple[str, str, str, int], ...]


def app_stall(stall: Stall) -> bool:
    """Whether a stall was the app's (its code or a library's): not the
    kit's own work on the loop, nor a stall no sample caught."""
    return owner_kind(stall.owner) not in ("leaklab", "unknown")


@dataclasses.dataclass(frozen=True)
class StepTiming:
    """What the loop did while one step of a cycle ran (a connect, a text turn).

    Attributes:
        step: the step's word (``connect``, ``text``...).
        wall_ms: how long the step took.
        blocked_ms: the time the app's stalls held the loop inside the step
            (each stall's lag counted for the part that falls in the step).
        busy_ms: the time sampled running the app's code (or a library's)
            inside the step, stalls or not.
        functions: ``"module.function"`` -> ms: the innermost frame of the
            app in each of those samples (the code that ran), largest first.
    """

    step: str
    wall_ms: float
    blocked_ms: float
    busy_ms: float
    functions: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "wall_ms": round(self.wall_ms, 3), "blocked_ms": round(self.blocked_ms, 3),
                "busy_ms": round(self.busy_ms, 3), "functions": {k: round(v, 3) for k, v in self.functions.items()}}


def step_timings(
    windows: Iterable[tuple[str, float, float]],
    stalls: Iterable[Stall],
    samples: Sequence[Sample],
    owner_of: Callable[[str], str] = default_owner,
    *,
    origin: float = 0.0,
    top: int = 5,
) -> tuple[StepTiming, ...]:
    """The loop's time inside each step.

    Args:
        windows: ``(step, start, end)`` per step (``perf_counter`` seconds).
        stalls: the stalls (``ended_s`` counted from ``origin``); only the
            app's count (:func:`app_stall`): a stall held the loop during
            ``(ended - lag, ended]``.
        samples: ``(t, ms, stack, coroutine)`` (the kit's own already left
            out); a sample covers ``(t - ms, t]``.
        owner_of: module -> owner label.
        top: functions kept per step.
    """
    held = [(origin + s.ended_s - s.lag_ms / 1000, origin + s.ended_s) for s in stalls if app_stall(s)]
    out = []
    for step, start, end in windows:
        blocked = sum(max(0.0, min(end, b) - max(start, a)) for a, b in held) * 1000
        per: Counter[str] = Counter()
        busy = 0.0
        for t, ms, stack, _ in samples:
            if not stack or not start < t <= end:
                continue
            i = _app_frame(stack, owner_of)
            if owner_kind(owner_of(stack[i][0])) not in ("yours", "library"):
                continue
            busy += ms
            per[frame_key(stack[i])] += ms
        out.append(StepTiming(step, (end - start) * 1000, blocked, busy, dict(per.most_common(top))))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class CycleTiming:
    """What the loop did since the previous :meth:`LoopWatch.take`.

    Attributes:
        wall_s: seconds covered.
        worst_lag_ms: the latest heartbeat.
        blocked_ms: the summed lag of the stalls.
        stalls: how many beats were later than the threshold.
        stall_list: the longest stalls (at most ``max_stalls``), longest first.
        profile: the samples folded (:class:`~leaklab.probes.stacks.Profile`;
            loop steps only: the loop's wait in the selector is ``idle_ms``).
        busy_ms, idle_ms: sampled time running code / waiting in the selector.
        samples: stacks sampled (idle ones included).
        cpu_s: CPU of the process, less the helper thread's own (``own_cpu_s``).
        children_cpu_s: CPU of child processes (recursive; reaped ones included).
        coroutines: ms sampled per loop step's coroutine (or callback).
        loop_cpu_s: CPU of the loop's thread alone (``time.thread_time``).
        steps: per step window given to :meth:`LoopWatch.take`, what the
            loop did inside it (:class:`StepTiming`).
    """

    wall_s: float
    worst_lag_ms: float
    blocked_ms: float
    stalls: int
    stall_list: tuple[Stall, ...]
    profile: Profile
    busy_ms: float
    idle_ms: float
    samples: int
    cpu_s: float
    children_cpu_s: float
    own_cpu_s: float
    coroutines: dict[str, float]
    loop_cpu_s: float = 0.0
    steps: tuple[StepTiming, ...] = ()

    @property
    def functions(self) -> dict[str, Any]:
        """``"module.function"`` -> :class:`~leaklab.probes.stacks.FunctionTime`."""
        return self.profile.functions

    def as_dict(self, *, top: int = 30, tree: bool = False) -> dict[str, Any]:
        """JSON-ready: the numbers, the stalls, the ``top`` functions by
        inclusive time, the owners, the coroutines (and the frame tree)."""
        out: dict[str, Any] = {
            k: round(getattr(self, k), 6) for k in (
                "wall_s", "worst_lag_ms", "blocked_ms", "busy_ms", "idle_ms", "cpu_s", "children_cpu_s",
                "own_cpu_s", "loop_cpu_s")
        }
        out.update(stalls=self.stalls, samples=self.samples,
                   stall_list=[dataclasses.asdict(s) for s in self.stall_list],
                   functions=[dataclasses.asdict(f) for f in self.profile.top(top, by="total_ms")],
                   owners={k: dataclasses.asdict(v) for k, v in self.profile.owners.items()},
                   coroutines={k: round(v, 3) for k, v in self.coroutines.items()})
        if self.steps:
            out["steps"] = [s.as_dict() for s in self.steps]
        if tree:
            out["tree"] = self.profile.tree.as_dict()
        return out


@dataclasses.dataclass(frozen=True)
class IdleCpu:
    """CPU burnt while the loop should have been idle (:meth:`LoopWatch.idle_cpu`).

    Attributes:
        wall_s: seconds waited.
        cpu_s: CPU of the process meanwhile (less the helper thread's).
        ratio: ``cpu_s / wall_s`` (1.0: a core spinning all along).
        children_cpu_s: CPU of child processes meanwhile.
        coroutines: ms sampled per coroutine (or callback) meanwhile.
        profile: those samples folded.
    """

    wall_s: float
    cpu_s: float
    ratio: float
    children_cpu_s: float
    coroutines: dict[str, float]
    profile: Profile


def children_cpu_snapshot() -> tuple[dict[int, float], float]:
    """CPU seconds of each live descendant process (user + system, with its
    own reaped children) and of this process's reaped children (``os.times``)."""
    per: dict[int, float] = {}
    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        kids = []
    for k in kids:
        try:
            t = k.cpu_times()
        except psutil.Error:
            continue
        per[k.pid] = t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
    ot = os.times()
    return per, ot.children_user + ot.children_system


def children_cpu_delta(before: tuple[dict[int, float], float], after: tuple[dict[int, float], float]) -> float:
    """Children's CPU between two :func:`children_cpu_snapshot`: the live
    ones' growth, plus what the reaped ones added beyond what was already
    counted of them."""
    b, b_reaped = before
    a, a_reaped = after
    live = sum(max(0.0, cpu - b.get(pid, 0.0)) for pid, cpu in a.items())
    gone = sum(cpu for pid, cpu in b.items() if pid not in a)
    return live + max(0.0, (a_reaped - b_reaped) - gone)


def assign_stalls(
    events: Iterable[tuple[float, float, float]],
    samples: Sequence[Sample],
    owner_of: Callable[[str], str] = default_owner,
    *,
    origin: float = 0.0,
) -> list[Stall]:
    """The stalls with the code that held the loop.

    Args:
        events: ``(start, end, lag_s)`` per late beat: the loop was held
            somewhere in ``(start, end]`` (``perf_counter`` seconds).
        samples: ``(t, ms, stack, coroutine)`` in time order; ``stack`` is
            outermost first, ``None`` for the loop waiting in its selector.
        owner_of: module -> owner label.
        origin: the time ``ended_s`` counts from.
    """
    out = []
    samples = list(samples)
    times = [s[0] for s in samples]
    for start, end, lag in events:
        lo, hi = bisect.bisect_right(times, start), bisect.bisect_right(times, end)
        mine = [s for s in samples[lo:hi] if s[2]]
        out.append(_stall(lag, end - origin, mine, owner_of))
    return out


def _app_frame(stack: Sequence[Frame], owner_of: Callable[[str], str]) -> int:
    """Index of the innermost frame of the app: the user's code, else a
    library's, else the innermost frame."""
    fallback = -1
    for i in range(len(stack) - 1, -1, -1):
        kind = owner_kind(owner_of(stack[i][0]))
        if kind == "yours":
            return i
        if kind == "library" and fallback < 0:
            fallback = i
    return fallback if fallback >= 0 else len(stack) - 1


def _stall(lag: float, ended: float, samples: list[Sample], owner_of: Callable[[str], str]) -> Stall:
    if not samples:
        return Stall(lag * 1000, ended, 0, "", "", 0, "", "", ())
    picks = []
    for s in samples:
        i = _app_frame(s[2], owner_of)
        picks.append((frame_key(s[2][i]), s[2][i][3], i, s))
    counts = Counter(p[0] for p in picks)
    key, _ = counts.most_common(1)[0]
    lines = Counter(p[1] for p in picks if p[0] == key)
    line = lines.most_common(1)[0][0]
    _, _, i, s = next(p for p in picks if p[0] == key and p[1] == line)
    fr = s[2][i]
    chain = tuple((f[0], f[1], f[2], f[3]) for f in s[2][: i + 1])
    return Stall(lag * 1000, ended, len(samples), key, fr[2], fr[3], owner_of(fr[0]), s[3], chain)


def timing_columns(
    timing: CycleTiming,
    *,
    floor_ms: float = 1.0,
    kinds: Iterable[str] = ("yours", "library"),
    keep: Iterable[str] = (),
) -> dict[str, float]:
    """The flat columns of a cycle: ``loop_lag_max_ms``, ``loop_blocked_ms``,
    ``loop_stalls``, ``cpu_ms``, ``children_cpu_ms`` and, per function of the
    owner ``kinds`` with at least ``floor_ms`` inclusive time,
    ``time:<module.function>`` (ms; the functions in ``keep`` always, 0 when
    not sampled, so a column once seen stays)."""
    kinds = set(kinds)
    out = {
        "loop_lag_max_ms": round(timing.worst_lag_ms, 3),
        "loop_blocked_ms": round(timing.blocked_ms, 3),
        "loop_stalls": float(timing.stalls),
        "cpu_ms": round(timing.cpu_s * 1000, 3),
        "children_cpu_ms": round(timing.children_cpu_s * 1000, 3),
    }
    for key in keep:
        out[metrics.name(Kind.TIME, key)] = 0.0
    for f in timing.profile.functions.values():
        if owner_kind(f.owner) in kinds and f.total_ms >= floor_ms:
            out[metrics.name(Kind.TIME, f.key)] = round(f.total_ms, 3)
    for key in keep:
        f = timing.profile.functions.get(key)
        if f is not None:
            out[metrics.name(Kind.TIME, key)] = round(f.total_ms, 3)
    return out
