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
* Python 3.10-3.11: a ``sys.settrace`` (and ``threading.settrace``) call
  tracer that returns ``None`` for frames of any other file, so no line
  event is made for them; the changed files' frames get a line tracer only
  where their code holds a changed line.

Nothing here keeps a code object of another file: decisions are cached by
file name.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["LineTracer", "MONITORING"]

#: ``sys.monitoring`` is used (Python 3.12+); else a scoped trace function.
MONITORING = sys.version_info >= (3, 12)
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

    def __init__(self, plan: Mapping[str, Mapping[str, Any]]) -> None:
        self._files = {os.path.realpath(p): _File(os.path.realpath(p), v.get("lines") or (), v.get("functions") or {})
                       for p, v in plan.items()}
        self._by_name: dict[str, _File | None] = {}
        self._tool: int | None = None
        self._instrumented: list[Any] = []
        self._previous: Any = None
        self._previous_threading: Any = None
        self.mechanism = "sys.monitoring" if MONITORING else "sys.settrace"

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
        if MONITORING:
            self._start_monitoring()
        else:
            self._previous = sys.gettrace()
            self._previous_threading = threading.gettrace() if hasattr(threading, "gettrace") else None
            threading.settrace(self._call)
            sys.settrace(self._call)
        return self

    def stop(self) -> None:
        if not self._files:
            return
        if MONITORING:
            self._stop_monitoring()
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
