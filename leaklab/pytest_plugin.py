"""leaklab as a pytest plugin, the way pytest-memray marks a test.

Installed with leaklab (the ``pytest11`` entry point ``leaklab``), nothing to
configure::

    import pytest

    @pytest.mark.leaklab(target="olv", app_dir="path/to/app", scenario="switch-then-close", cycles=4)
    def test_a_closed_tab_keeps_no_session():
        pass  # the body runs first; then the cycles run and are judged

A marked test fails when a watched type leaks or is retained, with the
message :func:`leaklab.testing.assert_no_leak` raises (the verdict and the
retention chain): the marker's arguments are that function's. For async
tests, the ``leak_session`` fixture runs the same check on the test's own
event loop (``check = await leak_session("reference", cycles=3)``).
``--leaklab-allow FILE`` names the chain signatures of known library leaks
(one a line, ``#`` comments), passed to every check; the run ends with one
summary line.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from .testing import LeakCheck, assert_no_leak, check_leaks

__all__ = ["MARKER", "load_allow_file"]

MARKER = "leaklab"
_SIGNATURE = re.compile(r"[0-9a-f]{12}")


@dataclasses.dataclass
class _Tally:
    """What the run's checks found, for the summary line."""

    allow: tuple[str, ...] = ()
    checked: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    allowed: list[str] = dataclasses.field(default_factory=list)

    def note(self, nodeid: str, check: LeakCheck | None, ok: bool) -> None:
        self.checked.append(nodeid)
        if not ok:
            self.failed.append(nodeid)
        if check is not None and check.allowed:
            self.allowed.append(nodeid)


_TALLY = pytest.StashKey[_Tally]()


def load_allow_file(path: Path | str) -> list[str]:
    """The signatures listed in ``path``: the first word of each line, 12 hex
    digits (``leaklab`` prints them in a failing check's message); ``#``
    starts a comment, the rest of a line is free text.

    Raises:
        pytest.UsageError: a missing file, or a line whose first word is not
            a signature (naming the file and line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise pytest.UsageError(f"--leaklab-allow: cannot read {path}: {exc.strerror or exc}") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        word = line.split("#", 1)[0].split(maxsplit=1)
        if not word:
            continue
        if not _SIGNATURE.fullmatch(word[0]):
            raise pytest.UsageError(f"--leaklab-allow: {path}:{n}: {word[0]!r} is not a chain signature "
                                    "(12 hex digits, as a failing check prints them)")
        out.append(word[0])
    return out


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("leaklab", "leaklab: per-session leak checks")
    group.addoption("--leaklab-allow", action="append", default=[], metavar="FILE",
                    help="a file of retention-chain signatures that may keep a type alive (known library leaks), "
                         "one a line; repeatable")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(target='reference', scenario='switch-then-close', cycles=4, types=('ServiceContext',), **kwargs): "
        "after the test, drive the backend through session cycles and fail with the retention chain when a watched "
        "type leaks (the arguments of leaklab.testing.assert_no_leak)",
    )
    allow = [s for f in config.getoption("leaklab_allow") or [] for s in load_allow_file(f)]
    config.stash[_TALLY] = _Tally(tuple(dict.fromkeys(allow)))


def _tally(config: pytest.Config) -> _Tally:
    return config.stash.setdefault(_TALLY, _Tally())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    result = yield  # the test body first: a failing body is its own failure
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return result
    tally = _tally(item.config)
    kwargs = dict(marker.kwargs)
    kwargs["allow"] = [*tally.allow, *kwargs.get("allow", ())]
    failure = None
    try:
        assert_no_leak(*marker.args, **kwargs)
    except AssertionError as exc:
        failure = str(exc)
    tally.note(item.nodeid, None, ok=failure is None)
    if failure is not None:  # outside the except: the message once, not chained to the AssertionError
        pytest.fail(failure, pytrace=False)
    return result


@pytest.fixture
def leak_session(request: pytest.FixtureRequest) -> Callable[..., Awaitable[LeakCheck]]:
    """For async tests: ``check = await leak_session(target, scenario, cycles, **kwargs)``
    runs the cycles on the test's event loop and fails it as the marker does
    (:func:`leaklab.testing.check_leaks`'s arguments; the run's allow-list
    applies). Returns the :class:`~leaklab.testing.LeakCheck` when nothing leaked."""
    tally = _tally(request.config)

    async def run(target: Any = "reference", scenario: Any = "switch-then-close", cycles: int = 4,
                  **kwargs: Any) -> LeakCheck:
        kwargs["allow"] = [*tally.allow, *kwargs.get("allow", ())]
        check = await check_leaks(target, scenario, cycles, **kwargs)
        tally.note(request.node.nodeid, check, ok=check.ok)
        if not check.ok:
            pytest.fail(check.message(), pytrace=False)
        return check

    return run


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    tally = config.stash.get(_TALLY, None)
    if tally is None or not tally.checked:
        return
    n = len(set(tally.checked))
    failed = sorted(set(tally.failed))
    line = f"leaklab: {n} test(s) checked for session leaks, {len(failed)} leaked"
    if failed:
        line += f" ({', '.join(failed)})"
    if tally.allowed:
        line += f"; {len(set(tally.allowed))} passed only by --leaklab-allow"
    terminalreporter.write_line(line, red=bool(failed), green=not failed)
