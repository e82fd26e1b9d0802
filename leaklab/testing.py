"""A regression guard for your own tests: fail when a session leaks.

    from leaklab.testing import assert_no_leak

    def test_switch_then_close_keeps_no_context():
        assert_no_leak("olv", app_dir="path/to/your/app", scenario="switch-then-close", cycles=4)

:func:`assert_no_leak` starts the backend in-process, drives the cycles on
its own event loop, and raises ``AssertionError`` when a watched type has a
``leak`` verdict or is still above its baseline at the end of the retention
timeline. When :mod:`leaklab.retention` is available the message says who
keeps the survivors alive (the reference chain and where it was created).

As a pytest plugin (``pytest_plugins = ["leaklab.testing"]`` in your
top-level ``conftest.py``, or ``-p leaklab.testing``), the ``leak_check``
fixture is :func:`assert_no_leak`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .metrics import Kind, Verdict, name as metric_name

if TYPE_CHECKING:  # pragma: no cover
    from .session import RunResult
    from .targets import Target

__all__ = ["LeakCheck", "assert_no_leak", "check_leaks", "leak_check"]


@dataclasses.dataclass(frozen=True)
class LeakCheck:
    """What :func:`check_leaks` found.

    Attributes:
        result: the run (census, timeline, ``summary()``).
        problems: one line per watched type that leaked or was retained.
        chains: the retention groups of the retained types (``as_dict()``
            form of :mod:`leaklab.retention`), empty when not analysed.
        retention_note: why there are no chains, when there are none.
    """

    result: RunResult
    problems: tuple[str, ...]
    chains: tuple[dict[str, Any], ...] = ()
    retention_note: str = ""
    #: problems passed because every chain that keeps the type is on the
    #: allow-list (a known library leak), one line each
    allowed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        """The ``AssertionError`` text: what leaked, and who keeps it alive."""
        r = self.result
        faults = ",".join(r.faults) or "none"
        leak_n = sum(1 for p in self.problems if ": leaks," in p)
        kept_n = sum(1 for p in self.problems if ": retained," in p)
        what = " and ".join(part for part in (f"{leak_n} watched type(s) leak" if leak_n else "",
                                               f"{kept_n} retained" if kept_n else "") if part)
        head = (
            f"leaklab: {what or 'no problem'} in {r.cycles_done} cycle(s) of "
            f"{r.scenario!r} (target {r.target!r}, faults {faults})"
        )
        lines = [head, *(f"  {p}" for p in self.problems)]
        for group in self.chains:
            lib = (f" — a library leak, in {group['library']}"
                   + (f", triggered by your code: {group['trigger']}" if group.get("trigger") else "")
                   if group.get("library") else "")
            lines.append(
                f"  {group.get('count', '?')} x {group.get('type', '?')} kept alive by "
                f"({group.get('root_kind', '?')}; signature {group.get('signature', '?')}){lib}:"
            )
            for i, edge in enumerate(group.get("chain") or []):
                where = f"  [{edge['where']}]" if edge.get("where") else ""
                lines.append(f"      {'-> ' if i else ''}{edge.get('label', '?')}{where}")
            lines.append(f"      -> {group.get('type', '?')}")
        if self.retention_note:
            lines.append(f"  ({self.retention_note})")
        if r.errors:
            lines.append(f"  cycle errors: {'; '.join(r.errors[:3])}")
        return "\n".join(lines)


def _resolve(
    target: Target | str,
    *,
    app_dir: Any,
    target_file: Any,
    faults: Any,
    options: Mapping[str, Any] | None,
    types: Sequence[str],
    watch: Mapping[str, str] | None,
) -> Target:
    from .targets import resolve_target

    extra = {t: t for t in types}
    extra.update(watch or {})
    return resolve_target(target, app_dir=app_dir, target_file=target_file, faults=faults, options=options, watch=extra)


def _end_counts(result: RunResult, name: str) -> tuple[float, float]:
    """(baseline, count at the end): the end is the last timeline sample, or
    the last census when there is no timeline."""
    key = metric_name(Kind.TYPE, name)
    base = float(result.records[0].get(key) or 0) if result.records else 0.0
    last_rec = result.timeline[-1] if result.timeline else (result.records[-1] if result.records else {})
    return base, float(last_rec.get(key) or 0)


def _problems(result: RunResult, summary: Mapping[str, Any], types: Sequence[str]) -> tuple[list[str], list[str]]:
    """One line per watched type that leaks (grows cycle after cycle) or is
    retained (instances the cycles created still alive after the timeline,
    whatever the slope: a flat count can pin one session for good), and the
    types to explain. The line says which of the two it is."""
    lines, retained = [], []
    counted = "survivors" in summary
    for name in types:
        verdict = (summary.get("types", {}).get(name) or {})
        base, end = _end_counts(result, name)
        if counted:
            kept_n = result.survivors.get(name, 0) - result.survivors_open.get(name, 0)
        else:  # a run without a census: what the end count shows
            kept_n = int(max(0.0, end - base))
        leaks = verdict.get("verdict") == Verdict.LEAK
        note = f" ({verdict['note']})" if verdict.get("note") else ""
        counts = f"{end:g} alive at the end vs {base:g} at baseline"
        if leaks:
            per = verdict.get("per_cycle")
            lines.append(f"{name}: leaks, {per:+.2g} per cycle (verdict leak{note}); {counts}"
                         + (f"; {kept_n} created by the cycles still alive" if kept_n else ""))
        elif kept_n > 0:
            v = verdict.get("verdict", "unknown")
            lines.append(f"{name}: retained, {kept_n} created by the cycles still alive after the timeline "
                         f"({'no steady growth: ' if v == Verdict.NONE else ''}verdict {v}{note}); {counts}")
        if kept_n > 0 or leaks:
            retained.append(name)
    return lines, retained


def _retention(session: Any, names: Iterable[str], recorder: Any, since: float) -> tuple[list[dict[str, Any]], str]:
    try:
        from .retention import analyze_survivors
    except ImportError:
        return [], "retention chains unavailable: leaklab.retention is not installed"
    # gc.freeze() at session start hides the pre-run heap from
    # gc.get_referrers; the chain search needs it back.
    session.thaw()
    gc.collect()
    # Only what the cycles created: the instances of the baseline (the
    # default context...) are alive by design.
    alive = session.survivors(since, names=names)
    instances = {name: alive.get(name, []) for name in names}
    alive.clear()
    try:
        report = analyze_survivors(instances, creation_sites=recorder)
        groups = list(report.as_dict().get("groups", []))
    except Exception as exc:  # the guard must still report the leak itself
        return [], f"retention analysis failed: {type(exc).__name__}: {exc}"
    finally:
        for objs in instances.values():
            objs.clear()
        instances.clear()
    return groups, "" if groups else "retention analysis found no chain"


async def check_leaks(
    target: Target | str = "reference",
    scenario: Any = "switch-then-close",
    cycles: int = 4,
    *,
    types: Sequence[str] = ("ServiceContext",),
    allow: Iterable[str] = (),
    **session_kwargs: Any,
) -> LeakCheck:
    """Run the cycles on the running loop and report, without raising (the
    async core of :func:`assert_no_leak`, for notebooks and async tests).

    Args:
        target: a :class:`~leaklab.targets.Target` or a name
            :class:`~leaklab.session.LeakSession` resolves; ``types`` must be
            among its watched types.
        scenario: a scenario name or object.
        cycles: session cycles.
        types: the watched type names to judge.
        allow: chain signatures (``RetentionGroup`` ``signature``) that may
            keep a type alive: a known library leak; a type kept only by
            these passes (and is listed in ``allowed``), a new chain fails.
        **session_kwargs: :class:`~leaklab.session.LeakSession` settings.
    """
    from .session import LeakSession

    session_kwargs.setdefault("runs_dir", False)
    session_kwargs.setdefault("progress", False)
    session = LeakSession(target, **session_kwargs)
    await session.start()
    recorder = None
    try:
        try:
            from .probes import TaskCreationRecorder

            recorder = TaskCreationRecorder().install()
        except (ImportError, RuntimeError):
            recorder = None
        since = time.monotonic()
        result = await session.run(scenario, cycles)
        problems, retained = _problems(result, result.summary(), types)
        chains: list[dict[str, Any]] = []
        note = ""
        if retained:
            chains, note = _retention(session, retained, recorder, since)
    finally:
        if recorder is not None:
            recorder.uninstall()
        await session.stop()
    problems, allowed = allowed_problems(problems, chains, allow)
    return LeakCheck(result, tuple(problems), tuple(c for c in chains if c.get("signature") not in set(allow)),
                     note, tuple(allowed))


def allowed_problems(problems: Sequence[str], chains: Sequence[Mapping[str, Any]],
                     allow: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(problems still failing, problems passed by the allow-list)``: a
    type's problem passes when chains were found for it and every one of
    them has an allowed signature (no chain found: it still fails)."""
    allow = set(allow)
    if not allow:
        return list(problems), []
    failing, passed = [], []
    for line in problems:
        name = line.split(":", 1)[0]
        sigs = {c.get("signature") for c in chains if c.get("type") == name}
        if sigs and sigs <= allow:
            passed.append(f"{line} — allowed: kept only by {', '.join(sorted(s for s in sigs if s))}")
        else:
            failing.append(line)
    return failing, passed


def _in_own_loop(make_coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    # A loop already runs in this thread (Jupyter, an async test): run ours
    # in a worker thread rather than nest, and wait for it.
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = asyncio.run(make_coro())
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="leaklab-assert-no-leak")
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def assert_no_leak(
    target: Target | str = "reference",
    scenario: Any = "switch-then-close",
    cycles: int = 4,
    faults: Any = (),
    options: Mapping[str, Any] | None = None,
    types: Sequence[str] = ("ServiceContext",),
    *,
    app_dir: Any = None,
    target_file: Any = None,
    watch: Mapping[str, str] | None = None,
    allow_errors: bool = False,
    allow: Iterable[str] = (),
    **session_kwargs: Any,
) -> RunResult:
    """Drive ``cycles`` cycles of ``scenario`` and fail if a watched type leaks.

    Runs in its own event loop (in a worker thread when the calling thread
    already runs one), with the backend in-process on 127.0.0.1; nothing is
    saved unless ``runs_dir`` is given.

    Args:
        target: ``"reference"``, ``"olv"`` (with ``app_dir``), a target file,
            an import path ``pkg.module:factory``, or a :class:`~leaklab.targets.Target`.
        scenario: a scenario name or :class:`~leaklab.driver.scenarios.Scenario`.
        cycles: session cycles.
        faults: fault ids (reference backend, or a factory that takes them).
        options: backend options (``{"heavy_init_s": "inf"}``), or the olv profile's.
        types: watched type names to judge; names the target does not watch
            yet are looked up by class name.
        app_dir: the app folder for ``"olv"``.
        target_file: a target file (instead of ``target``).
        watch: more types to count (reported in the census, not judged).
        allow_errors: do not fail on cycles that errored.
        allow: chain signatures that may keep a type alive (known library
            leaks, from a failing run's message): CI then fails on new ones
            only.
        **session_kwargs: :class:`~leaklab.session.LeakSession` settings
            (``settle_s``, ``timeline_s``, ``step_timeout_s``, ``runs_dir``...).

    Returns:
        The run, when nothing leaked.

    Raises:
        AssertionError: a type in ``types`` has verdict ``leak``, or more live
            instances at the end of the timeline than at the baseline; or a
            cycle failed (unless ``allow_errors``). The message names the type,
            the verdict and, when retention analysis is available, the chain
            that keeps the survivors alive.
        ValueError: a type in ``types`` matches no loaded class; a bad target,
            scenario, fault or option.
    """
    from .driver.scenarios import get_scenario

    if cycles < 1:
        raise ValueError("cycles must be >= 1")
    types = tuple(types)
    get_scenario(scenario)  # a typo fails before anything starts
    resolved = _resolve(target, app_dir=app_dir, target_file=target_file, faults=faults, options=options,
                        types=types, watch=watch)
    found = resolved.resolve_types()
    unknown = [t for t in types if t not in found]
    if unknown:
        raise ValueError(f"no class named {', '.join(map(repr, unknown))} is loaded for target {resolved.name!r}")
    check: LeakCheck = _in_own_loop(lambda: check_leaks(resolved, scenario, cycles, types=types, allow=allow,
                                                        **session_kwargs))
    if not check.ok:
        raise AssertionError(check.message())
    if check.result.errors and not allow_errors:
        raise AssertionError(
            f"leaklab: {len(check.result.errors)} cycle(s) of {check.result.scenario!r} failed, "
            f"so the leak check is not conclusive: {'; '.join(check.result.errors[:3])}"
        )
    return check.result


try:
    import pytest
except ImportError:  # pragma: no cover - assert_no_leak works without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def leak_check() -> Any:
        """:func:`assert_no_leak`, as a fixture: ``leak_check("olv", app_dir=..., cycles=4)``."""
        return assert_no_leak

    def pytest_configure(config: Any) -> None:
        config.addinivalue_line("markers", "leaklab: drives a backend through session cycles (seconds per test)")
