"""The pytest plugin: ``@pytest.mark.leaklab`` passes on the fixed reference
backend and fails with the retention chain on a faulty one; ``leak_session``
for async tests; ``--leaklab-allow``; one summary line."""

from __future__ import annotations

import pytest

from leaklab._compat import tomllib
from leaklab.pytest_plugin import load_allow_file

from .test_packaging import ROOT

pytest_plugins = ["pytester"]

#: Load the plugin by module whether or not its entry point is installed
#: here (an installed one is blocked, so it is not registered twice).
PLUGIN = ("-p", "no:leaklab", "-p", "leaklab.pytest_plugin")
FAST = "settle_s=0.1, timeline_s=1.0"


def test_the_entry_point_names_the_plugin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"leaklab": "leaklab.pytest_plugin"}


@pytest.mark.extended  # end to end, 5-10 s: run by .ci/run after the suite
def test_marked_tests_pass_on_the_fixed_reference(pytester: pytest.Pytester):
    # GIVEN a test file with a marked test and an async one using leak_session,
    # both on the reference backend with no faults (the fixed code)
    pytester.makepyfile(f"""
        import asyncio
        import pytest

        @pytest.mark.leaklab(target="reference", scenario="switch-then-close", cycles=3, faults="none", {FAST})
        def test_fixed():
            pass

        def test_async(leak_session):
            async def body():
                check = await leak_session("reference", "open-close", 3, {FAST})
                return check.result.cycles_done
            assert asyncio.run(body()) == 3
    """)
    # WHEN pytest runs it
    result = pytester.runpytest_subprocess(*PLUGIN)
    # THEN both pass, and the summary says so
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["leaklab: 2 test(s) checked for session leaks, 0 leaked"])


@pytest.mark.extended  # end to end, 5-10 s: run by .ci/run after the suite
def test_a_marked_test_fails_with_the_chain_on_a_leaking_backend(pytester: pytest.Pytester):
    # GIVEN C8 with an init that never ends: every switched session is kept by a pending task
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.leaklab(scenario="switch-then-close", cycles=3, faults="C8",
                             options={{"heavy_init_s": "inf"}}, {FAST})
        def test_switch_then_close():
            pass
    """)
    # WHEN pytest runs it
    result = pytester.runpytest_subprocess(*PLUGIN)
    # THEN it fails with assert_no_leak's message: the verdict, then the chain
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*leaklab: 1 watched type(s) leak in 3 cycle(s) of 'switch-then-close'*",
        "*ServiceContext: leaks, +1 per cycle (verdict leak*",
        "*3 x ServiceContext kept alive by (pending_task; signature *",
        "*ServiceContext._finish_heavy_init (pending*",
        "*-> coroutine frame local 'self'*",
    ])
    result.stdout.fnmatch_lines(["leaklab: 1 test(s) checked for session leaks, 1 leaked (*test_switch_then_close)"])
    # (once: not chained to the AssertionError it came from)
    # (pytest repeats the whole message in the short summary when CI is set: counted before it)
    failures = result.stdout.str().split("short test summary info")[0]
    assert failures.count("kept alive by (pending_task") == 1


def test_a_test_without_the_marker_runs_nothing_and_no_summary(pytester: pytest.Pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(passed=1)
    assert "session leaks" not in result.stdout.str()


def test_the_allow_file(tmp_path, pytester: pytest.Pytester):
    # GIVEN signatures with comments, and a file with a line that is not one
    good = tmp_path / "allow.txt"
    good.write_text("# known library leaks\nc53ab04ae372  anyio's task states\n\n0123456789ab\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("c53ab04ae372\nnot-a-signature\n")
    # THEN the first gives its signatures; the second is a usage error naming the line
    assert load_allow_file(good) == ["c53ab04ae372", "0123456789ab"]
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_inprocess(*PLUGIN, "--leaklab-allow", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{bad}:2: 'not-a-signature' is not a chain signature*"])
