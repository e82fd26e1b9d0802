"""The regression guard: assert_no_leak passes on the fixed backend and fails,
with the retention chain in the message, on a leak; the fixture form too."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import pytest

from leaklab.testing import assert_no_leak, leak_check  # noqa: F401  (leak_check: the fixture)

FAST = dict(settle_s=0.1, timeline_s=1.0)


def test_passes_on_the_fixed_reference_backend():
    # GIVEN the reference backend, no faults WHEN switch-then-close runs 4 cycles
    result = assert_no_leak(target="reference", scenario="switch-then-close", cycles=4, faults=(), options={},
                            types=("ServiceContext",), **FAST)
    # THEN it returns the run, with nothing kept
    s = result.summary()
    assert s["types"]["ServiceContext"]["verdict"] in ("none", "transient")
    assert result.timeline[-1]["type:ServiceContext"] == result.records[0]["type:ServiceContext"]


def test_fails_with_the_chain_on_c8_with_an_init_that_never_ends():
    # GIVEN C8 and heavy_init_s=inf WHEN the guard runs
    with pytest.raises(AssertionError) as info:
        assert_no_leak(target="reference", scenario="switch-then-close", cycles=4, faults=("C8",),
                       options={"heavy_init_s": "inf"}, types=("ServiceContext",), **FAST)
    message = str(info.value)
    # THEN the message names the type, the verdict, and the chain from the pending task
    assert message.startswith("leaklab: 1 watched type(s) leak in 4 cycle(s)"), message
    assert "ServiceContext: leaks, +1 per cycle (verdict leak" in message
    # (the baseline may count an app an earlier test left in FastAPI's own lru_cache)
    alive, base = map(int, re.search(r"(\d+) alive at the end vs (\d+) at baseline", message).groups())
    assert alive - base == 4, message
    pytest.importorskip("leaklab.retention")
    assert "4 x ServiceContext kept alive by (pending_task; signature " in message
    assert "ServiceContext._finish_heavy_init (pending" in message
    assert "leaklab/backend/service_context.py:" in message
    assert "-> coroutine frame local 'self'" in message


def test_runs_in_its_own_loop_when_called_from_a_running_one():
    # GIVEN a caller already inside an event loop (Jupyter, an async test)
    async def caller():
        outer = asyncio.get_running_loop()
        result = assert_no_leak("reference", "open-close", cycles=3, **FAST)
        return outer, result

    # WHEN it calls the guard THEN the run happens on another loop, and passes
    outer, result = asyncio.run(caller())
    assert result.cycles_done == 3 and result.errors == []


def test_fixture_form_on_the_olv_app(leak_check, olv_app):
    # GIVEN the upstream-shaped app through the olv profile, its MCP off (the
    # guard, not MCP, is what this proves; that the guard passes where nothing
    # leaks: test_passes_on_the_fixed_reference_backend)
    conf = olv_app / "conf.yaml"
    conf.write_text(conf.read_text().replace("use_mcpp: true", "use_mcpp: false"))
    # WHEN switch-then-close runs THEN the planted warm-up task is named, in the app's own file
    with pytest.raises(AssertionError) as info:
        leak_check("olv", app_dir=olv_app, scenario="switch-then-close", cycles=3, **FAST)
    message = str(info.value)
    assert "ServiceContext: leaks, +1 per cycle (verdict leak" in message
    pytest.importorskip("leaklab.retention")
    assert "ServiceContext._warm_up_agent (pending" in message
    assert "open_llm_vtuber/service_context.py:" in message


def test_unknown_type_or_scenario_is_a_usage_error():
    with pytest.raises(ValueError, match="no class named 'NoSuchClass'"):
        assert_no_leak("reference", types=("NoSuchClass",))
    with pytest.raises(ValueError, match="unknown scenario"):
        assert_no_leak("reference", scenario="nope")


def test_plugin_form_gives_the_fixture(tmp_path):
    # GIVEN a project whose tests use the fixture, with leaklab.testing as a plugin
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["leaklab.testing"]\n')
    (tmp_path / "test_mine.py").write_text(
        "def test_guard_is_there(leak_check):\n    assert leak_check.__name__ == 'assert_no_leak'\n"
    )
    # WHEN pytest runs there THEN the fixture resolves
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout + out.stderr


def test_a_flat_count_that_pins_one_session_is_retained_and_the_headline_agrees():
    # GIVEN a run whose ServiceContext count is flat (1 -> 2 in the first
    # cycle, then 2: the verdict is none) but one context the cycles created
    # is alive after the timeline
    from leaklab.session import RunResult
    from leaklab.testing import LeakCheck, _problems

    records = [{"cycle": c, "t": float(c), "type:ServiceContext": n, "tasks": 5} for c, n in enumerate([1, 2, 2, 2, 2])]
    result = RunResult("r1", "olv:app", "abrupt-chat", [], {}, 4, records, [{"t": 5.0, "type:ServiceContext": 2}],
                       survivors={"ServiceContext": 1})
    summary = result.summary()
    assert summary["types"]["ServiceContext"]["verdict"] == "none"
    # WHEN the guard judges it
    problems, explain = _problems(result, summary, ["ServiceContext"])
    message = LeakCheck(result, tuple(problems)).message()
    # THEN it is reported as retained, not as a leak, in the headline and the detail alike, and explained
    assert explain == ["ServiceContext"]
    assert message.splitlines()[0] == "leaklab: 1 retained in 4 cycle(s) of 'abrupt-chat' (target 'olv:app', faults none)"
    (line,) = problems
    assert line.startswith("ServiceContext: retained, 1 created by the cycles still alive after the timeline "
                           "(no steady growth: verdict none"), line
    assert line.endswith("; 2 alive at the end vs 1 at baseline"), line
    # and an open session among the survivors is not one
    result.survivors_open = {"ServiceContext": 1}
    assert _problems(result, result.summary(), ["ServiceContext"]) == ([], [])


def test_the_guards_allow_list_passes_a_known_chain_and_fails_a_new_one():
    import re

    from leaklab.testing import allowed_problems, assert_no_leak

    fast = dict(scenario="open-close", cycles=4, settle_s=0.05, timeline_s=0.3)
    # GIVEN a backend that keeps every session's context in a list
    with pytest.raises(AssertionError) as failed:
        assert_no_leak("tests.apps:leaks_contexts", **fast)
    (signature,) = set(re.findall(r"signature ([0-9a-f]{12})", str(failed.value)))
    # WHEN that chain is allowed, on a fresh run: it passes (the signature is
    # stable from run to run)
    assert_no_leak("tests.apps:leaks_contexts", allow=[signature], **fast)
    # a different allowed signature does not hide it, and a problem with no
    # chain found is never allowed
    problem, chains = ["ServiceContext: leaks, +1 per cycle"], [{"type": "ServiceContext", "signature": signature}]
    assert allowed_problems(problem, chains, ["0123456789ab"]) == (problem, [])
    assert allowed_problems(problem, chains, [signature])[0] == []
    assert allowed_problems(problem, [], [signature]) == (problem, [])
