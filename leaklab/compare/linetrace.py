"""Which changed lines ran, and how often: a line tracer scoped to a few files.

Given a plan (file -> the changed lines in it, and the functions enclosing
them, by the line their code starts at), :class:`LineTracer` counts each
changed line's executions and each enclosing function's entries (a
coroutine counts once per call, not once per resume) while it runs, and
notes whether any code of the file ran at all (imported or not).

* Python 3.12+: ``sys.monitoring``. ``PY_START`` is on for every code
  object once, and disabled (``DISABLE``) for every code object that is not
  an enclosing function of a changed file, so everything else runs
  unobserved after its first call; ``LINE`` events are switched on only for
  the changed files' code objects holding changed lines, and disabled at
  every other line on its first hit: only the changed lines keep calling
  back, exactly once per execution.
* Python 3.10-3.11: an import hook compiles the changed files (only those)
  with a counter call before each statement on a changed line (and at the
  top of a loop's body for a changed loop header, as a line event would
  fire per iteration) and at the top of each enclosing function: every other
  file runs exactly as it would, untraced. It sees the files imported after
  :meth:`LineTracer.start` (a comparison's unit runs in a fresh process).
  A ``sys.settrace`` call tracer (``mechanism="settrace"``), returning
  ``None`` for frames of other files, is kept for comparison: measured
  1.23× (3.11) and 1.5× (3.10) on a unit, as tracing mode slows every
  frame (``benchmarks/fix_tracing.py``).

Nothing here keeps a code object of another file: decisions are cached by
file name.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["MONITORING", "LineTracer"]

#: ``sys.monitoring`` is used (Python 3.12+); else the changed files are compiled with counters.
MONITORING = sys.version_info >= (3, 12)
#: The name the counters are found by in an instrumented module's globals.
COUNTER = "__leaklab_fix_lines__"
#: Tool ids tried, in order (coverage.py takes 1, debuggers 0, profilers 2).
_TOOL_IDS = (4, 3, 5, 2, 1, 0)


class _File:
    """The plan and the counts of one traced file."""

    __slots__ = ("path", "wanted", "functions", "counts", "entries", "ran", "code_lines")

    def __init__(self, path: str, lines: Any, functions: Mapping[Any, str]) -> None:
        self.path = path
        self.wanted = frozenset(int(x) for x in lines)
        self.functions = {int(k): str(v) for k, v in functions.items()}
        self.counts: dict[int, int] = {}
        self.entries: dict[str, int] = {}
        self.ran = False
        # code (by first line and name) -> the changed lines it holds
        self.code_lines: dict[tuple[int, str], frozenset[int]] = {}

    def lines_of(self, code: Any) -> frozenset[int]:
        key = (code.co_firstlineno, code.co_name)
        found = self.code_lines.get(key)
        if found is None:
            found = self.code_lines[key] = frozenset(
                ln for _, _, ln in code.co_lines() if ln is not None and ln in self.wanted)
        return found

    def hit(self, line: int) -> None:
        """Called by an instrumented statement."""
        self.counts[line] = self.counts.get(line, 0) + 1

    def enter(self, first: int) -> None:
        """Called at the top of an instrumented function."""
        name = self.functions[first]
        self.entries[name] = self.entries.get(name, 0) + 1

    def result(self) -> dict[str, Any]:
        return {"imported": self.ran, "lines": {str(k): v for k, v in sorted(self.counts.items())},
                "functions": dict(self.entries)}


class LineTracer:
    """Count the executions of a few lines of a few files.

    Args:
        plan: file path -> ``{"lines": [changed lines], "functions":
            {first line of the code: qualified name}}``.

    Use as a context manager, or :meth:`start` / :meth:`stop`; then
    :meth:`result`: file path -> ``{"imported": bool, "lines": {"line":
    count}, "functions": {name: entries}}``.
    """

    def __init__(self, plan: Mapping[str, Mapping[str, Any]], mechanism: str | None = None) -> None:
        self._files = {os.path.realpath(p): _File(os.path.realpath(p), v.get("lines") or (), v.get("functions") or {})
                       for p, v in plan.items()}
        self._by_name: dict[str, _File | None] = {}
        self._tool: int | None = None
        self._instrumented: list[Any] = []
        self._previous: Any = None
        self._previous_threading: Any = None
        self.mechanism = mechanism or ("sys.monitoring" if MONITORING else "import hook")
        if self.mechanism not in ("sys.monitoring", "import hook", "settrace"):
            raise ValueError(f"unknown mechanism {self.mechanism!r}: sys.monitoring, import hook or settrace")
        if self.mechanism == "sys.monitoring" and not MONITORING:
            raise ValueError("sys.monitoring needs Python 3.12+")
        self._finder: _Finder | None = None

    # -- which file a code object belongs to ---------------------------------
    def _file(self, filename: str) -> _File | None:
        try:
            return self._by_name[filename]
        except KeyError:
            found = self._files.get(os.path.realpath(filename)) if filename and not filename.startswith("<") else None
            self._by_name[filename] = found
            return found

    # -- start / stop ------------------------------------------------------------
    def start(self) -> LineTracer:
        if not self._files:
            return self
        if self.mechanism == "sys.monitoring":
            self._start_monitoring()
        elif self.mechanism == "import hook":
            self._finder = _Finder(self._files)
            sys.meta_path.insert(0, self._finder)
        else:
            self._previous = sys.gettrace()
            self._previous_threading = threading.gettrace() if hasattr(threading, "gettrace") else None
            threading.settrace(self._call)
            sys.settrace(self._call)
        return self

    def stop(self) -> None:
        if not self._files:
            return
        if self.mechanism == "sys.monitoring":
            self._stop_monitoring()
        elif self.mechanism == "import hook":
            if self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)
            self._finder = None
        else:
            sys.settrace(self._previous)
            threading.settrace(self._previous_threading)  # type: ignore[arg-type]

    def __enter__(self) -> LineTracer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def result(self) -> dict[str, dict[str, Any]]:
        return {path: f.result() for path, f in self._files.items()}

    # -- Python 3.10-3.11: a trace function that looks at calls only --------------
    def _call(self, frame: Any, event: str, arg: Any) -> Any:
        code = frame.f_code
        f = self._file(code.co_filename)
        if f is None:
            return None
        f.ran = True
        name = f.functions.get(code.co_firstlineno)
        if name is not None and frame.f_lineno == code.co_firstlineno:  # a start, not a coroutine's resume
            f.entries[name] = f.entries.get(name, 0) + 1
        lines = f.lines_of(code)
        if not lines:
            return None
        counts = f.counts

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "line":
                line = frame.f_lineno
                if line in lines:
                    counts[line] = counts.get(line, 0) + 1
            return local

        return local

    # -- Python 3.12+: sys.monitoring --------------------------------------------
    def _start_monitoring(self) -> None:
        mon = sys.monitoring  # type: ignore[attr-defined]
        mon.restart_events()  # locations an earlier tracer disabled are seen again
        for tool in _TOOL_IDS:
            if mon.get_tool(tool) is None:
                mon.use_tool_id(tool, "leaklab-fix-lines")
                self._tool = tool
                break
        else:
            raise RuntimeError("every sys.monitoring tool id is taken: the fix's lines can't be traced")
        events = mon.events
        disable = mon.DISABLE
        line_files: dict[Any, tuple[frozenset[int], dict[int, int]]] = {}
        tool = self._tool

        def on_start(code: Any, offset: int) -> Any:
            f = self._file(code.co_filename)
            if f is None:
                return disable
            f.ran = True
            lines = f.lines_of(code)
            if lines and code not in line_files:
                line_files[code] = (lines, f.counts)
                self._instrumented.append(code)
                mon.set_local_events(tool, code, events.LINE)
            name = f.functions.get(code.co_firstlineno)
            if name is None:
                return disable
            f.entries[name] = f.entries.get(name, 0) + 1
            return None

        def on_line(code: Any, line: int) -> Any:
            found = line_files.get(code)
            if found is None or line not in found[0]:
                return disable
            counts = found[1]
            counts[line] = counts.get(line, 0) + 1
            return None

        mon.register_callback(tool, events.PY_START, on_start)
        mon.register_callback(tool, events.LINE, on_line)
        mon.set_events(tool, events.PY_START)

    def _stop_monitoring(self) -> None:
        mon = sys.monitoring  # type: ignore[attr-defined]
        tool = self._tool
        if tool is None:
            return
        mon.set_events(tool, 0)
        for code in self._instrumented:
            mon.set_local_events(tool, code, 0)
        self._instrumented.clear()
        mon.register_callback(tool, mon.events.PY_START, None)
        mon.register_callback(tool, mon.events.LINE, None)
        mon.free_tool_id(tool)
        self._tool = None


# -- Python 3.10-3.11: the changed files compiled with counters -------------------


class _Finder:
    """A ``sys.meta_path`` finder for the changed files only: their source
    is compiled with counters; nothing is written to ``__pycache__``."""

    def __init__(self, files: Mapping[str, _File]) -> None:
        self._files = files

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or not spec.origin or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        f = self._files.get(os.path.realpath(spec.origin))
        if f is None:
            return None
        spec.loader = _Loader(spec.loader.name, spec.loader.path, f)
        return spec

    def invalidate_caches(self) -> None:
        pass


class _Loader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, file: _File) -> None:
        super().__init__(fullname, path)
        self._file = file

    def get_code(self, fullname: str) -> Any:
        source = importlib.util.decode_source(self.get_data(self.path))
        return compile(instrument(source, self._file.wanted, self._file.functions), self.path, "exec",
                       dont_inherit=True)

    def exec_module(self, module: Any) -> None:
        module.__dict__[COUNTER] = self._file
        self._file.ran = True
        super().exec_module(module)


def _call(method: str, value: int, at: ast.AST) -> ast.stmt:
    node = ast.Expr(ast.Call(ast.Attribute(ast.Name(COUNTER, ast.Load()), method, ast.Load()),
                             [ast.Constant(value)], []))
    return ast.copy_location(node, at)


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _children(node: ast.AST) -> list[list[Any]]:
    """The statement lists inside a compound statement (and its handlers' / cases' bodies)."""
    out = []
    for field in ("body", "orelse", "finalbody"):
        value = getattr(node, field, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            out.append(value)
    return out


def _owned(node: ast.AST, wanted: frozenset[int]) -> list[int]:
    """The wanted lines of ``node`` not inside one of its inner statements."""
    start, end = node.lineno, getattr(node, "end_lineno", None) or node.lineno  # type: ignore[attr-defined]
    inner: list[ast.AST] = [s for body in _children(node) for s in body]
    inner += list(getattr(node, "handlers", []) or []) + list(getattr(node, "cases", []) or [])
    taken = {ln for s in inner for ln in range(getattr(s, "lineno", None) or s.pattern.lineno,
                                                 (s.body[-1] if hasattr(s, "pattern") else s).end_lineno + 1)}
    return [ln for ln in range(start, end + 1) if ln in wanted and ln not in taken]


def instrument(source: str, wanted: frozenset[int], functions: Mapping[int, str]) -> ast.Module:
    """``source`` parsed, with a counter call before each statement on a
    wanted line (and at the top of a changed loop's body: one per
    iteration, as a line event) and at the top of each listed function."""
    tree = ast.parse(source)

    def body(stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for i, node in enumerate(stmts):
            for inner in _children(node):
                inner[:] = body(inner)
            for handler in [*(getattr(node, "handlers", []) or []), *(getattr(node, "cases", []) or [])]:
                head = [ln for ln in range(getattr(handler, "lineno", handler.body[0].lineno), handler.body[0].lineno)
                        if ln in wanted]
                handler.body[:] = [*(_call("hit", ln, handler.body[0]) for ln in head), *body(handler.body)]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if first in functions:
                    at = 1 if _is_docstring(node.body[0]) else 0
                    node.body.insert(at, _call("enter", first, node.body[at] if at < len(node.body) else node))
            skip = (_is_docstring(node) and i == 0) or (
                isinstance(node, ast.ImportFrom) and node.module == "__future__")
            lines = [] if skip else _owned(node, wanted)
            out.extend(_call("hit", ln, node) for ln in lines)
            if lines and isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
                node.body[:0] = [_call("hit", ln, node.body[0]) for ln in lines]
            out.append(node)
        return out

    tree.body = body(tree.body)
    return ast.fix_missing_locations(tree)
