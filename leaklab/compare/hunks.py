"""The change between two sides, as hunks of Python code, each in the
function that encloses it.

:func:`changed_files` lists the app's Python files that differ between two
folders (a virtualenv, caches, leaklab itself are not the app);
:func:`split_hunks` splits one file's change into hunks (difflib) and maps
each to the innermost ``def``/``class`` spanning it, by qualified name
(``ServiceContext.close``), with the lines of it that execute: those a line
tracer can see run (:mod:`.linetrace`). Pure: files in, data out.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["FileChange", "Hunk", "changed_files", "executable_lines", "function_spans", "split_hunks"]

#: Folders never part of the app: virtualenvs, caches, VCS, front-end builds.
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".env", ".tox", ".nox",
                          "node_modules", "site-packages", "dist-packages", "build", ".mypy_cache",
                          ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", "leaklab"})


@dataclasses.dataclass(frozen=True)
class Hunk:
    """One contiguous change of one file.

    Attributes:
        file: the file, relative to the app folder.
        function: the innermost ``def``/``class`` spanning it, qualified
            (``ServiceContext.close``); ``"<module>"`` at the top level.
        before: ``(first, last)`` line numbers removed (1-based, inclusive);
            ``None`` when nothing was removed.
        after: ``(first, last)`` line numbers added; ``None`` when nothing was.
        lines: the added lines that execute (a tracer sees them run).
        removed_lines: the removed lines that executed code on the before side.
        text: the first changed line, stripped (to name the hunk).
        function_line: the line the enclosing function's code starts at
            (its first decorator or its ``def``) on the side the hunk is
            placed on (after; before for a pure removal); 0 for ``<module>``.
    """

    file: str
    function: str
    before: tuple[int, int] | None
    after: tuple[int, int] | None
    lines: tuple[int, ...]
    removed_lines: tuple[int, ...]
    text: str = ""
    function_line: int = 0

    @property
    def id(self) -> str:
        """``file:line`` of the hunk (its after side, else its before side)."""
        first = (self.after or self.before or (0, 0))[0]
        return f"{self.file}:{first}"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "file": self.file, "function": self.function,
                "before": list(self.before) if self.before else None, "after": list(self.after) if self.after else None,
                "lines": list(self.lines), "removed_lines": list(self.removed_lines), "text": self.text,
                "function_line": self.function_line}


@dataclasses.dataclass(frozen=True)
class FileChange:
    """One app file that differs: its path on each side (``None``: absent there)."""

    rel: str
    before: Path | None
    after: Path | None


def python_files(root: Path) -> Iterator[str]:
    """The app's Python files under ``root``, relative (nothing in a
    virtualenv, a cache or a linked folder)."""
    if not Path(root).is_dir():
        return
    for folder, dirs, files in os.walk(root):  # symlinked folders (a linked .venv) are not followed
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")
                         and not (here / d / "pyvenv.cfg").exists())
        for name in sorted(files):
            if name.endswith(".py"):
                yield str((here / name).relative_to(root))


def changed_files(before: Path, after: Path) -> list[FileChange]:
    """The Python files under ``before`` and ``after`` (an app folder, or one
    file each) whose bytes differ, added and removed ones included."""
    before, after = Path(before), Path(after)
    if before.is_file() or after.is_file():
        if before.is_file() and after.is_file() and before.read_bytes() == after.read_bytes():
            return []
        return [FileChange(after.name, before if before.is_file() else None, after if after.is_file() else None)]
    out = []
    for rel in sorted(set(python_files(before)) | set(python_files(after))):
        pb, pa = before / rel, after / rel
        # one side's copy may sit in a linked folder (untracked, taken from the other side)
        if pb.is_file() and pa.is_file() and pb.read_bytes() == pa.read_bytes():
            continue
        out.append(FileChange(rel, pb if pb.is_file() else None, pa if pa.is_file() else None))
    return out


def function_spans(source: str) -> list[tuple[int, int, str, int]]:
    """``(first line, last line, qualified name, code's first line)`` of every
    ``def`` and ``class`` in ``source`` (the first line counts decorators;
    the code's first line is what ``co_firstlineno`` says)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out: list[tuple[int, int, str, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                name = f"{prefix}{child.name}"
                out.append((start, child.end_lineno or child.lineno, name, start))
                inner = f"{name}.<locals>." if not isinstance(child, ast.ClassDef) else f"{name}."
                walk(child, inner)
            else:
                walk(child, prefix)

    walk(tree, "")
    return out


def _enclosing(spans: Sequence[tuple[int, int, str, int]], first: int, last: int) -> tuple[str, int]:
    inside = [s for s in spans if s[0] <= first and last <= s[1]]
    if not inside:
        return "<module>", 0
    best = max(inside, key=lambda s: (s[0], -s[1]))
    return best[2].replace(".<locals>.", "."), best[3]


def executable_lines(source: str, filename: str = "<changed>") -> frozenset[int]:
    """The lines of ``source`` that some bytecode starts at (what a line
    tracer can report), in every code object; empty when it does not compile."""
    try:
        top = compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return frozenset()
    lines: set[int] = set()
    todo = [top]
    while todo:
        code = todo.pop()
        lines.update(line for _, _, line in code.co_lines() if line is not None)
        todo.extend(c for c in code.co_consts if hasattr(c, "co_lines"))
    lines.discard(0)
    return frozenset(lines)


def split_hunks(rel: str, before: str | None, after: str | None) -> list[Hunk]:
    """One file's change as hunks, each mapped to its enclosing function.

    Args:
        rel: the file's name in the hunks.
        before, after: its text on each side (``None``: absent there).
    """
    b_lines = (before or "").splitlines(keepends=True)
    a_lines = (after or "").splitlines(keepends=True)
    b_exec, a_exec = executable_lines(before or "", rel), executable_lines(after or "", rel)
    b_spans, a_spans = function_spans(before or ""), function_spans(after or "")
    hunks = []
    matcher = difflib.SequenceMatcher(None, b_lines, a_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed = (i1 + 1, i2) if i2 > i1 else None
        added = (j1 + 1, j2) if j2 > j1 else None
        changed = [ln for ln in a_lines[j1:j2] if ln.strip()] or [ln for ln in b_lines[i1:i2] if ln.strip()]
        if not changed:  # blank lines only
            continue
        if added is not None:
            function, code_line = _enclosing(a_spans, *added)
        else:
            function, code_line = _enclosing(b_spans, *removed)  # type: ignore[misc]
        hunks.append(Hunk(
            rel, function, removed, added,
            tuple(ln for ln in range(j1 + 1, j2 + 1) if ln in a_exec),
            tuple(ln for ln in range(i1 + 1, i2 + 1) if ln in b_exec),
            changed[0].strip()[:120], code_line,
        ))
    return hunks


def hunks_between(before: Path, after: Path) -> list[Hunk]:
    """Every hunk of every changed Python file between two app folders."""
    out: list[Hunk] = []
    for change in changed_files(before, after):
        out.extend(split_hunks(change.rel, _read(change.before), _read(change.after)))
    return out


def _read(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


__all__ += ["hunks_between", "python_files"]
