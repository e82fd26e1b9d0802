"""``loop``: where the event loop's time goes, per cycle, as census columns.

Wraps a :class:`~leaklab.probes.loop.LoopWatch` (a lag watchdog and a stack
sampler on a helper thread) behind the probe protocol:

* after each cycle: ``loop_lag_max_ms``, ``loop_blocked_ms``, ``loop_stalls``
  (stalls of the app's code and its libraries: the kit's own census, which
  also runs on the loop, is left out), ``cpu_ms``, ``children_cpu_ms``, and
  ``time:<module.function>`` (ms of the cycle spent in each function of the
  app or a library, inclusive), ``calibration_ms`` (a fixed workload timed
  on the loop: the machine's speed, the control of the ``slows`` verdicts);
* per step kind, the time the app's stalls held the loop inside it, per
  step: ``connect_blocked_ms`` (the connects), ``reply_blocked_ms`` (the
  text turns) (:data:`STEP_COLUMNS`);
* in the timeline after the cycles: ``idle_app_ms``, the time the app's
  code (and its libraries) ran on the loop while the backend should be idle
  (leaked tasks that spin);
* :meth:`LoopProbe.details`: the longest stalls of the run with the code that
  held the loop and its callers, the idle CPU (and the coroutines that ran
  meanwhile), the first and last cycles' profiles (frame trees, for flame
  graphs), the ms per cycle of each coroutine (``coroutines``) and, per step
  kind, the code that ran inside the steps (``steps``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from types import MappingProxyType
from typing import Any

from .. import metrics
from ..metrics import Kind
from .base import BaseProbe, ProbeContext, Sample
from .loop import CycleTiming, LoopWatch, StepTiming, app_stall, timing_columns
from .stacks import default_owner, owner_kind

__all__ = ["CALIBRATION_LOOPS", "STEP_COLUMNS", "LoopProbe", "calibration_ms", "step_kind"]

#: Stalls kept per run (the longest), with their stacks.
MAX_STALLS = 10
#: Coroutines whose ms per cycle are kept (the first seen), and per step kind
#: the functions named.
MAX_COROUTINES = 40
MAX_STEP_FUNCTIONS = 10
#: The census column of each step kind: ms the app's stalls held the loop, per step.
STEP_COLUMNS = MappingProxyType({"connect": "connect_blocked_ms", "reply": "reply_blocked_ms"})


def step_kind(word: str) -> str | None:
    """The kind of a cycle's step whose latency the kit measures:
    ``"connect"`` (a tab opened: ``connect``, ``connect:bare``,
    ``proxy-connect``), ``"reply"`` (a text turn: ``text``,
    ``text-until-synth``...), else ``None``."""
    if word in ("connect", "proxy-connect") or word.startswith("connect:"):
        return "connect"
    if word.startswith("text"):
        return "reply"
    return None


def steps_of(steps: tuple[StepTiming, ...]) -> dict[str, dict[str, Any]]:
    """Per step kind, the mean per step of the cycle's steps of that kind:
    ``{"steps", "wall_ms", "blocked_ms", "busy_ms", "functions"}``."""
    out: dict[str, dict[str, Any]] = {}
    for st in steps:
        kind = step_kind(st.step)
        if kind is None:
            continue
        d = out.setdefault(kind, {"steps": 0, "wall_ms": 0.0, "blocked_ms": 0.0, "busy_ms": 0.0, "functions": {}})
        d["steps"] += 1
        for k in ("wall_ms", "blocked_ms", "busy_ms"):
            d[k] += getattr(st, k)
        for f, ms in st.functions.items():
            d["functions"][f] = d["functions"].get(f, 0.0) + ms
    for d in out.values():
        n = d["steps"]
        for k in ("wall_ms", "blocked_ms", "busy_ms"):
            d[k] = round(d[k] / n, 3)
        top = sorted(d["functions"].items(), key=lambda kv: -kv[1])[:MAX_STEP_FUNCTIONS]
        d["functions"] = {f: round(ms / n, 3) for f, ms in top}
    return out


#: Iterations of the calibration workload (a few ms of pure Python).
CALIBRATION_LOOPS = 40_000


def calibration_ms(loops: int = CALIBRATION_LOOPS) -> float:
    """Wall ms of a fixed pure-Python workload on the calling thread: the
    same work every census, so it takes longer only when the machine (other
    processes, this one's other threads) leaves the loop less of the CPU.
    The control of the ``slows`` verdicts (``calibration_ms``)."""
    start = time.perf_counter()
    x = 0
    for i in range(loops):
        x = (x + i * i) % 1_000_003
    return (time.perf_counter() - start) * 1000


def kit_root(stack: tuple[Any, ...]) -> bool:
    """Whether a sampled stack (outermost frame first) is the kit's own work
    on the loop: its first frame outside the standard library (the loop
    step's root: the driver's clients, the census, the child sampler) is
    leaklab's. The backend's steps start in the server (a library) or the
    app; leaklab's wrappers inside them do not make them the kit's."""
    for frame in stack:
        kind = owner_kind(default_owner(frame[0] or frame[2]))
        if kind != "stdlib":
            return kind == "leaklab"
    return False


def grown(first: dict[str, float], timing: CycleTiming, *, min_ms: float = 1.0, factor: float = 1.5) -> list[dict[str, Any]]:
    """The functions of the app or a library whose inclusive time in
    ``timing`` grew from ``first`` (key -> ms of the first cycle) by at least
    ``min_ms`` and to ``factor`` times, largest growth first (as
    :func:`~leaklab.probes.stacks.grown_frames`, from the first cycle's
    totals only)."""
    out = []
    for key, f in timing.profile.functions.items():
        if owner_kind(f.owner) not in ("yours", "library"):
            continue
        before = first.get(key, 0.0)
        if f.total_ms - before >= min_ms and f.total_ms >= factor * before:
            out.append({"key": key, "owner": f.owner, "file": f.file, "line": f.line, "first_ms": round(before, 3),
                        "last_ms": round(f.total_ms, 3)})
    return sorted(out, key=lambda g: (-(g["last_ms"] - g["first_ms"]), g["key"]))


class LoopProbe(BaseProbe):
    """The loop watch as a probe (see the module's docstring).

    Args:
        threshold_ms: a loop held longer than this is a stall.
        hz: stack samples per second.
    """

    name = "loop"
    timeline = True

    def __init__(self, threshold_ms: float = 20.0, hz: float = 100.0) -> None:
        self.threshold_ms = threshold_ms
        self.hz = hz
        self.watch: LoopWatch | None = None
        # What is kept between censuses is strings, numbers and one dict or
        # two: the census counts the process's objects, and the kit's own
        # data must not grow with the cycles (the observer effect).
        self._seen: set[str] = set()
        self._stalls: list[tuple[float, str]] = []  # (lag ms, the stall as JSON)
        self._first_totals: dict[str, float] | None = None
        self._first_tree = self._last_tree = self._grown = ""
        self._idle_cpu_s = self._idle_wall_s = 0.0
        self._where: dict[str, tuple[str, int, str]] = {}
        self._coros: dict[str, str] = {}  # coroutine -> "cycle:ms cycle:ms ..."
        self._idle_coros: dict[str, float] = {}
        self._steps_first = self._steps_last = ""
        self._step_totals: dict[str, dict[str, float]] = {}  # kind -> function -> ms over the run
        self._step_counts: dict[str, int] = {}

    def install(self, context: ProbeContext) -> None:
        self.watch = LoopWatch(threshold_ms=self.threshold_ms, hz=self.hz, skip=kit_root).install()

    def begin(self, context: ProbeContext) -> None:
        if self.watch is not None:
            self.watch.take()  # what ran before this run is not its
        self._seen.clear()
        self._stalls.clear()
        self._where.clear()
        self._first_totals = None
        self._first_tree = self._last_tree = self._grown = ""
        self._idle_cpu_s = self._idle_wall_s = 0.0
        self._coros.clear()
        self._idle_coros.clear()
        self._steps_first = self._steps_last = ""
        self._step_totals.clear()
        self._step_counts.clear()

    def sample(self, context: ProbeContext) -> Sample:
        if self.watch is None:
            return {}
        log = getattr(context.state, "step_log", None) or () if context.phase == "cycle" else ()
        timing = self.watch.take([(r.step, r.started, r.ended) for r in log if r.ended > r.started])
        if context.phase == "timeline":
            # The kit's own work in the timeline (its collections) is not the
            # app's: the app's share is what was sampled in its code and libraries.
            app_ms = sum(o.self_ms for o in timing.profile.owners.values()
                         if owner_kind(o.owner) in ("yours", "library"))
            self._idle_cpu_s += app_ms / 1000
            self._idle_wall_s += timing.wall_s
            for name, ms in timing.coroutines.items():
                if name in self._idle_coros or len(self._idle_coros) < MAX_COROUTINES:
                    self._idle_coros[name] = self._idle_coros.get(name, 0.0) + ms
            return {"idle_app_ms": round(app_ms, 3)}
        if context.phase != "cycle":
            return {}  # the baseline: start-up and warm-up are not a cycle
        cycle = context.state.cycle if context.state is not None else 0
        cols = timing_columns(timing, keep=self._seen)
        app = [s for s in timing.stall_list if app_stall(s)]
        cols.update(loop_lag_max_ms=round(max((s.lag_ms for s in app), default=0.0), 3),
                    loop_blocked_ms=round(sum(s.lag_ms for s in app), 3), loop_stalls=float(len(app)),
                    calibration_ms=round(calibration_ms(), 3))
        for key in cols:
            if metrics.is_kind(key, Kind.TIME):
                self._seen.add(metrics.subject_of(key))
        self._note_steps(cycle, timing, cols)
        for name, ms in timing.coroutines.items():
            if ms >= 1.0 and (name in self._coros or len(self._coros) < MAX_COROUTINES):
                self._coros[name] = self._coros.get(name, "") + f"{cycle}={ms:.3f} "
        for f in timing.profile.functions.values():
            if f.key in self._seen and f.key not in self._where:
                self._where[f.key] = (f.file, f.line, f.owner)
        for st in app:
            self._stalls.append((st.lag_ms, json.dumps({"cycle": cycle, **dataclasses.asdict(st)})))
        self._stalls.sort(key=lambda x: -x[0])
        del self._stalls[MAX_STALLS:]
        tree = json.dumps(timing.profile.tree.as_dict())
        if self._first_totals is None:
            self._first_totals = {k: f.total_ms for k, f in timing.profile.functions.items()}
            self._first_tree = tree
        self._last_tree = tree
        self._grown = json.dumps(grown(self._first_totals, timing))
        return cols

    def _note_steps(self, cycle: int, timing: CycleTiming, cols: dict[str, float]) -> None:
        kinds = steps_of(timing.steps)
        for kind, d in kinds.items():
            cols[STEP_COLUMNS[kind]] = d["blocked_ms"]
            totals = self._step_totals.setdefault(kind, {})
            for f, ms in d["functions"].items():
                totals[f] = totals.get(f, 0.0) + ms * d["steps"]
            self._step_counts[kind] = self._step_counts.get(kind, 0) + d["steps"]
        if kinds:
            text = json.dumps({k: {"cycle": cycle, **d} for k, d in kinds.items()})
            if not self._steps_first:
                self._steps_first = text
            self._steps_last = text

    def details(self) -> dict[str, Any]:
        """The run's stalls, idle CPU and first/last profiles, JSON-ready."""
        out: dict[str, Any] = {"threshold_ms": self.threshold_ms, "hz": self.hz,
                               "stalls": [json.loads(text) for _, text in self._stalls],
                               "functions": {k: {"file": f, "line": line, "owner": o}
                                             for k, (f, line, o) in self._where.items()}}
        if self._idle_wall_s > 0:
            out["idle"] = {"wall_s": round(self._idle_wall_s, 3), "cpu_s": round(self._idle_cpu_s, 3),
                           "ratio": round(self._idle_cpu_s / self._idle_wall_s, 3),
                           "coroutines": {k: round(v, 3) for k, v in sorted(self._idle_coros.items(),
                                                                           key=lambda kv: -kv[1])[:10]}}
        if self._coros:
            out["coroutines"] = {name: [[int(c), float(ms)] for c, ms in (p.split("=") for p in text.split())]
                                 for name, text in self._coros.items()}
        if self._steps_first:
            first, last = json.loads(self._steps_first), json.loads(self._steps_last)
            out["steps"] = {
                kind: {"steps": n, "functions": {f: round(ms / n, 3) for f, ms in sorted(
                    self._step_totals.get(kind, {}).items(), key=lambda kv: -kv[1])[:MAX_STEP_FUNCTIONS]},
                       "first": first.get(kind), "last": last.get(kind)}
                for kind, n in self._step_counts.items()}
        if self._first_tree:
            out["first"] = json.loads(self._first_tree)
            out["last"] = json.loads(self._last_tree)
            out["grown"] = json.loads(self._grown)[:20]
        return out

    def uninstall(self) -> None:
        if self.watch is not None:
            self.watch.uninstall()
            self.watch = None
