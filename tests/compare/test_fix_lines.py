"""The fix's own lines: a change split into hunks, each in its enclosing
function, and a tracer that counts which of them ran (a tiny module in
tmp_path, no backend)."""

from __future__ import annotations

import asyncio
import importlib
import sys
import textwrap
import threading

import pytest

from leaklab.compare.hunks import changed_files, executable_lines, hunks_between, split_hunks
from leaklab.compare.linetrace import MONITORING, LineTracer

BEFORE = textwrap.dedent('''\
    import asyncio


    class Ctx:
        def __init__(self):
            self.tasks = set()

        async def close(self):
            # releases what the session holds
            self.closed = True

        async def switch(self):
            asyncio.create_task(asyncio.sleep(0))
            return 1


    def helper():
        return 2
    ''')

AFTER = textwrap.dedent('''\
    import asyncio


    class Ctx:
        def __init__(self):
            self.tasks = set()
            self.init_tasks = []

        async def close(self):
            # releases what the session holds
            for task in self.init_tasks:
                task.cancel()
            self.closed = True

        async def switch(self):
            task = asyncio.create_task(asyncio.sleep(0))
            self.init_tasks.append(task)
            await asyncio.sleep(0)
            return 1


    def helper():
        return 2
    ''')


def test_a_change_is_split_into_hunks_each_named_by_its_enclosing_function():
    # GIVEN a file with one line added in __init__, a loop in close(), a switch rewritten
    hunks = split_hunks("ctx.py", BEFORE, AFTER)
    # THEN each hunk names the innermost def it is in, qualified by its class
    assert [h.function for h in hunks] == ["Ctx.__init__", "Ctx.close", "Ctx.switch"]
    init, close, switch = hunks
    assert init.after == (7, 7) and init.before is None and init.lines == (7,)
    assert close.after == (11, 12) and close.lines == (11, 12) and close.text == "for task in self.init_tasks:"
    # a replaced line is removed on the before side and added on the after side
    assert switch.before == (13, 13) and switch.removed_lines == (13,) and switch.lines == (16, 17, 18)
    assert close.function_line == 9 and switch.function_line == 15
    assert close.id == "ctx.py:11"


def test_comments_and_blank_lines_are_not_executable_and_a_module_level_change_is_module():
    before = "x = 1\n\n\ndef f():\n    return 1\n"
    after = "x = 2\n\n\ndef f():\n    # why\n    return 1\n"
    (top, comment) = split_hunks("m.py", before, after)
    assert (top.function, top.lines) == ("<module>", (1,))
    assert (comment.function, comment.lines) == ("f", ())
    assert 5 not in executable_lines(after) and 6 in executable_lines(after)
    # a file that does not parse still gets its hunks, in <module>, with no executable line
    (broken,) = split_hunks("b.py", "x = 1\n", "x = (\n")
    assert broken.function == "<module>" and broken.lines == ()


def test_changed_files_skip_the_virtualenv_and_caches_and_list_added_files(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    for side, text in ((before, BEFORE), (after, AFTER)):
        (side / "pkg").mkdir(parents=True)
        (side / "pkg" / "ctx.py").write_text(text)
        (side / "pkg" / "same.py").write_text("y = 1\n")
        (side / ".venv" / "lib").mkdir(parents=True)
        (side / ".venv" / "lib" / "dep.py").write_text(f"z = {text!r}\n")
    (after / "pkg" / "new.py").write_text("def g():\n    return 3\n")
    (after / "myenv").mkdir()
    (after / "myenv" / "pyvenv.cfg").write_text("")
    (after / "myenv" / "x.py").write_text("w = 1\n")
    changes = changed_files(before, after)
    assert [(c.rel, c.before is not None, c.after is not None) for c in changes] == [
        ("pkg/ctx.py", True, True), ("pkg/new.py", False, True)]
    assert [h.function for h in hunks_between(before, after)] == ["Ctx.__init__", "Ctx.close", "Ctx.switch", "g"]
    assert changed_files(before / "pkg", before / "pkg") == []


def _plan(path, hunks):
    from leaklab.compare.hunks import function_spans

    spans = {name: start for start, _, name, start in function_spans(path.read_text())}
    return {str(path): {"lines": sorted({ln for h in hunks for ln in h.lines}),
                        "functions": {spans[h.function]: h.function for h in hunks}}}


MECHANISMS = [*(["sys.monitoring"] if MONITORING else []), "import hook", "settrace"]


@pytest.mark.lowest_env
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_the_tracer_counts_changed_lines_and_function_entries_and_nothing_else(tmp_path, monkeypatch, mechanism):
    # GIVEN the after side as a module on sys.path, and its hunks as the plan
    name = f"ctx_after_{mechanism.replace(' ', '_').replace('.', '_')}"
    path = tmp_path / f"{name}.py"
    path.write_text(AFTER)
    (tmp_path / f"{name}_untouched.py").write_text(
        "def loop(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hunks = split_hunks(path.name, BEFORE, AFTER)
    plan = _plan(path, hunks)
    plan[str(tmp_path / "never_imported.py")] = {"lines": [1], "functions": {}}
    # WHEN switch() runs 5 times (as coroutines, each with awaits: resumes are not entries),
    # close() never, and a thread runs switch() once more
    try:
        with LineTracer(plan, mechanism) as tracer:
            module = importlib.import_module(name)
            untouched = importlib.import_module(f"{name}_untouched")
            ctx = module.Ctx()

            async def main():
                for _ in range(5):
                    await ctx.switch()

            asyncio.run(main())
            worker = threading.Thread(target=lambda: asyncio.run(ctx.switch()))
            worker.start()
            worker.join()
            untouched.loop(1000)
        result = tracer.result()
        # THEN the switch's lines ran 6 times, close()'s never, __init__'s once
        mine = result[str(path.resolve())]
        assert mine["imported"] is True
        assert mine["lines"] == {"7": 1, "16": 6, "17": 6, "18": 6}
        assert mine["functions"] == {"Ctx.__init__": 1, "Ctx.switch": 6}
        assert result[str((tmp_path / "never_imported.py").resolve())] == {"imported": False, "lines": {},
                                                                            "functions": {}}
        assert tracer.mechanism == mechanism
        # and the tracer is gone afterwards
        assert sys.gettrace() is None and not [f for f in sys.meta_path if type(f).__name__ == "_Finder"]
        # the module behaves as written (its docstrings, its results)
        assert asyncio.run(ctx.switch()) == 1 and module.helper() == 2
        if mechanism == "sys.monitoring":  # a second tracer over the same code sees it again (nothing left disabled)
            with LineTracer(plan, mechanism) as again:
                asyncio.run(ctx.close())
            assert again.result()[str(path.resolve())]["functions"] == {"Ctx.close": 1}
            assert again.result()[str(path.resolve())]["lines"] == {"11": 8, "12": 7}  # seven tasks cancelled
        elif mechanism == "import hook":  # (the compiled-in counters keep counting)
            # a loop header counts once per iteration and once more at the end, as a line event does
            asyncio.run(ctx.close())
            assert tracer.result()[str(path.resolve())]["lines"]["11"] == 8
    finally:
        for mod in (name, f"{name}_untouched"):
            sys.modules.pop(mod, None)


@pytest.mark.lowest_env
def test_instrumenting_keeps_docstrings_future_imports_and_handlers(tmp_path, monkeypatch):
    from leaklab.compare.linetrace import instrument

    source = textwrap.dedent('''\
        """The module."""
        from __future__ import annotations


        def f(x):
            """f's doc."""
            try:
                y = 1 / x
            except ZeroDivisionError:
                y = 0
            while x > 0:
                x -= 1
            return y
        ''')
    tree = instrument(source, frozenset({8, 9, 10, 11, 12}), {5: "f"})
    namespace = {}

    class Counter:
        def __init__(self):
            self.hits, self.enters = [], []

        def hit(self, line):
            self.hits.append(line)

        def enter(self, first):
            self.enters.append(first)

    counter = namespace["__leaklab_fix_lines__"] = Counter()
    exec(compile(tree, "m.py", "exec", dont_inherit=True), namespace)
    assert namespace["__doc__"] == "The module." and namespace["f"].__doc__ == "f's doc."
    assert namespace["f"](0) == 0 and counter.hits == [8, 9, 10, 11] and counter.enters == [5]
    counter.hits.clear()
    # the while's test ran 3 times, its body twice (as line events count them)
    assert namespace["f"](2) == 0.5 and sorted(counter.hits) == [8, 11, 11, 11, 12, 12]


# -- what the coverage says next to the verdict ---------------------------------


def _change_and_plans(tmp_path):
    from leaklab.compare.fixlines import find_change, trace_plan

    before, after = tmp_path / "b", tmp_path / "a"
    for side, text in ((before, BEFORE), (after, AFTER)):
        side.mkdir()
        (side / "ctx.py").write_text(text)
        (side / "run.py").write_text("import ctx\n")
    (after / "unused.py").write_text("def never():\n    return 1\n")
    change = find_change(before, after)
    return change, {"after": trace_plan(change, "after"), "before": trace_plan(change, "before")}, after, before


def test_coverage_says_which_hunk_never_ran_why_and_which_item_measured_it(tmp_path):
    from leaklab.compare.fixlines import coverage_answer, hunk_line, unit_coverage

    # GIVEN the change's hunks (ctx.py: __init__, close, switch; unused.py never imported)
    change, plans, after, before = _change_and_plans(tmp_path)
    assert [h.function for h in change.hunks] == ["Ctx.__init__", "Ctx.close", "Ctx.switch", "never"]
    assert set(plans["after"][str((after / "ctx.py").resolve())]["functions"].values()) == {
        "Ctx.__init__", "Ctx.close", "Ctx.switch"}
    # and the traces the two children printed: close() never called on the after side
    a_path, b_path = str((after / "ctx.py").resolve()), str((before / "ctx.py").resolve())
    trace_after = {"mechanism": "sys.settrace", "files": {
        a_path: {"imported": True, "lines": {"7": 4, "16": 3, "17": 3, "18": 3},
                 "functions": {"Ctx.__init__": 4, "Ctx.switch": 3}},
        str((after / "unused.py").resolve()): {"imported": False, "lines": {}, "functions": {}}}}
    trace_before = {"files": {b_path: {"imported": True, "lines": {"13": 3}, "functions": {}}}}
    summary = {"lifecycle": {"Ctx.close": {"calls": 0, "expected": 3, "objects": {"ran_for": 0, "of": 3}}}}
    # WHEN the unit's coverage is worked out
    cov = unit_coverage(change, trace_after, trace_before, plans=plans, summaries=[summary],
                        roles={"session_close": "Ctx.close"}, cycles=3)
    hunks = {h["function"]: h for h in cov["hunks"]}
    # THEN switch ran every cycle (and the line it replaced ran 3 times before), close never, unused not imported
    assert hunks["Ctx.switch"]["status"] == "ran" and hunks["Ctx.switch"]["ran"] == 3
    assert hunks["Ctx.switch"]["removed_ran"] == 3
    assert hunks["Ctx.close"]["status"] == "never ran"
    assert hunks["Ctx.close"]["why"] == "`close()` was called 0 times; lifecycle:Ctx.close ran for 0 of 3 — that is C9"
    assert hunks["never"]["status"] == "not imported during the run"
    assert (cov["ran"], cov["never_ran"], cov["not_imported"]) == (2, 1, 1)
    assert cov["line"].startswith("your change: 4 hunks — `Ctx.__init__` (ran 4×, every cycle), `Ctx.close` "
                                  "(**never ran**: `close()` was called 0 times")
    assert hunk_line(hunks["Ctx.switch"], 3) == "ctx.py:16 Ctx.switch: ran 3×, every cycle; the code it replaced ran 3× before"
    assert hunk_line(hunks["Ctx.close"], 3).startswith("ctx.py:11 Ctx.close: never ran — `close()` was called 0 times")
    # and the answer says so first where the verdict alone would leave the user guessing
    assert coverage_answer("unchanged", cov).startswith("unchanged, and your change in `Ctx.close` never ran: ")
    assert coverage_answer("fixed", cov, before_leaked=True) == "fixed; the before side leaked on the same unit"
    assert coverage_answer("new leak", cov) == ""
    # every hunk run: the fix runs and does not help; fixed: the leak comes back without it
    ran_all = {**cov, "hunks": [h for h in cov["hunks"] if h["status"] != "never ran"]}
    assert coverage_answer("still leaks", ran_all) == ("still leaks: every hunk of your change ran (2): the fix runs "
                                                       "and does not help")
    assert coverage_answer("fixed", ran_all, before_leaked=True).startswith(
        "fixed, and the leak comes back without your change")
    # an untraced unit (its child failed, or --no-trace-fix) says so, and claims nothing
    untraced = unit_coverage(change, None, plans=plans)
    assert {h["status"] for h in untraced["hunks"]} == {"not traced"} and untraced["never_ran"] == 0
    assert coverage_answer("unchanged", untraced) == ""
