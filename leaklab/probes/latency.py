"""Time: spent inside a method (:class:`TimedMethod`, e.g. an agent's LLM
call), and the latencies the driver measured in each cycle."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..fakes.openai import llm_seconds, llm_usage
from .base import BaseProbe, ProbeContext, Sample
from .patching import MethodPatch, restore_all

__all__ = ["LatencyProbe", "TimedMethod"]


class TimedMethod:
    """Cumulative wall time spent inside a method (e.g. an agent's ``_call_llm``).

    Each call is timed from its start to its end (for ``async def``, from
    the first step of the coroutine to its return or exception, awaits
    included). Overlapping calls each add their own duration, so the total
    can exceed elapsed time. A call still running at :meth:`take` is added
    when it ends.

    Args:
        owner: the class.
        method_name: a sync or ``async def`` method (not a generator).
        clock: the time source (``time.perf_counter``).
    """

    def __init__(self, owner: type, method_name: str, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self._owner = owner
        self._name = method_name
        self._clock = clock
        self._total = 0.0
        self._taken = 0.0
        self._calls = 0
        self._patch: MethodPatch | None = None

    @property
    def installed(self) -> bool:
        """Whether the wrapper is in place."""
        return self._patch is not None

    @property
    def total(self) -> float:
        """Seconds spent in completed calls since construction."""
        return self._total

    @property
    def calls(self) -> int:
        """Completed calls since construction."""
        return self._calls

    def install(self) -> TimedMethod:
        """Wrap the method (idempotent).

        Raises:
            AttributeError: no such method.
            TypeError: a generator, async generator or property.
        """
        if self._patch is None:
            patch = MethodPatch(self._owner, self._name, self._timing_wrapper)
            patch.apply()
            self._patch = patch
        return self

    def uninstall(self) -> None:
        """Restore the method exactly (idempotent). Totals are kept.

        Raises:
            RuntimeError: the method was replaced after :meth:`install`.
        """
        if self._patch is not None:
            restore_all([self._patch])
            self._patch = None

    def __enter__(self) -> TimedMethod:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    def take(self) -> float:
        """Seconds spent in calls that completed since the previous ``take()``."""
        spent = self._total - self._taken
        self._taken = self._total
        return spent

    def _add(self, seconds: float) -> None:
        self._total += seconds
        self._calls += 1

    def _timing_wrapper(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
            raise TypeError(f"TimedMethod cannot time generator {func.__qualname__}")
        clock = self._clock
        add = self._add
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = clock()
                try:
                    return await func(*args, **kwargs)
                finally:
                    add(clock() - start)

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return func(*args, **kwargs)
            finally:
                add(clock() - start)

        return wrapper




def _fake_llm() -> tuple[int, float]:
    return llm_usage()[0], llm_seconds()


class LatencyProbe(BaseProbe):
    """After each cycle: ``latency_connect_ms`` (mean connect to greeting),
    ``latency_first_ms`` / ``latency_end_ms`` (mean time to a turn's first
    audio and to its end) and ``llm_ms`` (per turn) and ``backend_ms`` (the
    rest): the LLM call as the target times it (``timed["llm"]``), else, when
    the backend's LLM is leaklab's fake server, the time that server spent
    answering (its side of the call)."""

    name = "latency"
    timeline = False

    def __init__(self) -> None:
        self.timers: dict[str, TimedMethod] = {}
        #: (chat requests, seconds) the fake LLM had served at the cycle's start
        self._fake_mark: tuple[int, float] | None = None

    def install(self, context: ProbeContext) -> None:
        for label, (owner, name) in context.target.resolve_methods(context.target.timed).items():
            timer = TimedMethod(owner, name)
            timer.install()
            self.timers[label] = timer

    def begin(self, context: ProbeContext) -> None:
        for timer in self.timers.values():
            timer.take()
        self._fake_mark = None if "llm" in self.timers else _fake_llm()

    def _fake_llm_ms(self) -> float | None:
        """The fake LLM's seconds since the last call, in ms; ``None`` when it
        answered nothing (the backend's LLM is elsewhere)."""
        if self._fake_mark is None:
            return None
        mark, self._fake_mark = self._fake_mark, _fake_llm()
        return 1000 * (self._fake_mark[1] - mark[1]) if self._fake_mark[0] > mark[0] else None

    def sample(self, context: ProbeContext) -> Sample:
        out: Sample = {}
        state = context.state
        if state is not None and state.connect_s:
            out["latency_connect_ms"] = 1000 * sum(state.connect_s) / len(state.connect_s)
        llm = self.timers.get("llm")
        if state is not None and state.turns:
            firsts = [t.first_audio_s for t in state.turns if t.first_audio_s is not None]
            ends = [t.chain_end_s for t in state.turns if t.chain_end_s is not None]
            if firsts:
                out["latency_first_ms"] = 1000 * sum(firsts) / len(firsts)
            if ends:
                out["latency_end_ms"] = 1000 * sum(ends) / len(ends)
            llm_ms = 1000 * llm.take() if llm is not None else self._fake_llm_ms()
            if llm_ms is not None:
                out["llm_ms"] = llm_ms / len(state.turns)
                if ends:
                    out["backend_ms"] = out["latency_end_ms"] - out["llm_ms"]
        elif llm is not None:
            llm.take()
        else:
            self._fake_llm_ms()
        return out

    def uninstall(self) -> None:
        for timer in reversed(list(self.timers.values())):
            timer.uninstall()
        self.timers = {}
