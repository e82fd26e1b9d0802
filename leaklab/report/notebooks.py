"""Notebook files as data: the ``parameters`` cell, injected values, stripping.

Pure functions over :mod:`nbformat` nodes; nothing here runs a kernel. The
build (:mod:`leaklab.report.build`) and the tests use the same functions, so
"what the report runs" and "what the tests check" cannot drift apart.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import nbformat

from ..resources import notebooks_dir

__all__ = [
    "INJECTED_TAG",
    "NOTEBOOKS",
    "NOTEBOOKS_DIR",
    "PARAMETERS_TAG",
    "VERDICT_TABLE_TAG",
    "COMPARE_TABLE_TAG",
    "FIRST_SCREEN_TAG",
    "Definition",
    "definitions",
    "inject_parameters",
    "notebook_path",
    "parameter_names",
    "parameters_cell_index",
    "python_source",
    "read_notebook",
    "strip_files",
    "strip_notebook",
    "title",
    "unstripped_cells",
]

NOTEBOOKS_DIR = notebooks_dir()
"""The kit's notebooks: ``notebooks/`` of a checkout, or the wheel's copy (:mod:`leaklab.resources`)."""

NOTEBOOKS: tuple[str, ...] = (
    "00_quickstart",
    "01_reproduce_the_symptom",
    "02_who_keeps_it_alive",
    "03_checklist",
    "04_prove_the_fix",
    "05_your_backend",
    "06_hunt",
)
"""The notebooks, in reading order."""

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
VERDICT_TABLE_TAG = "verdict-table"
"""The cell whose output opens the HTML report (in ``03_checklist``)."""
COMPARE_TABLE_TAG = "compare-table"
"""The cell whose output opens a report built ``--against`` (in ``04_prove_the_fix``)."""
FIRST_SCREEN_TAG = "first-screen"
"""Cells showing the first screen in the notebook (and their heading): left
out of the report, which opens with it."""


def notebook_path(name: str, notebooks_dir: Path | None = None) -> Path:
    """``notebooks/<name>.ipynb``; ``name`` may carry the suffix. The one
    place that reads :data:`NOTEBOOKS_DIR` (the default folder)."""
    return (notebooks_dir or NOTEBOOKS_DIR) / (name if name.endswith(".ipynb") else f"{name}.ipynb")


def read_notebook(path: Path | str) -> nbformat.NotebookNode:
    """Read a notebook (nbformat 4)."""
    return nbformat.read(str(path), as_version=4)


def _tags(cell: Mapping[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def title(nb: nbformat.NotebookNode, default: str) -> str:
    """The notebook's title: its first markdown ``# heading`` (else ``default``)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return default


def parameters_cell_index(nb: nbformat.NotebookNode) -> int:
    """Index of the code cell tagged ``parameters``.

    Raises:
        ValueError: no code cell carries the tag.
    """
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and PARAMETERS_TAG in _tags(cell):
            return i
    raise ValueError("the notebook has no code cell tagged 'parameters'")


def parameter_names(nb: nbformat.NotebookNode) -> list[str]:
    """Names assigned in the ``parameters`` cell, in order."""
    tree = ast.parse(nb.cells[parameters_cell_index(nb)].source)
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            if isinstance(t, ast.Name) and t.id not in names:
                names.append(t.id)
    return names


def _literal(value: Any) -> str:
    """Python source for a parameter value (what ``repr`` gets wrong: inf, nan)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_literal(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise TypeError(f"parameter values must be literals (str, numbers, None, lists, dicts), not {type(value).__name__}")


def inject_parameters(nb: nbformat.NotebookNode, params: Mapping[str, Any], *, only_declared: bool = True) -> nbformat.NotebookNode:
    """A copy of ``nb`` with a cell tagged ``injected-parameters`` right after
    the ``parameters`` cell (papermill's convention), replacing an earlier one.

    Args:
        nb: the notebook.
        params: name -> literal value.
        only_declared: inject only the names the ``parameters`` cell assigns
            (the report passes ``cycles`` to every notebook; only some take
            ``items``).

    Raises:
        ValueError: no ``parameters`` cell.
        TypeError: a value that is not a literal.
    """
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if INJECTED_TAG not in _tags(c)]
    index = parameters_cell_index(out)
    declared = parameter_names(out)
    chosen = {k: v for k, v in params.items() if not only_declared or k in declared}
    if not chosen:
        return out
    lines = ["# Injected parameters"] + [f"{k} = {_literal(v)}" for k, v in chosen.items()]
    out.cells.insert(index + 1, nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]}))
    return out


def strip_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy with no outputs, no execution counts, no run-time metadata
    (what is committed)."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if INJECTED_TAG not in _tags(c)]
    for cell in out.cells:
        meta = cell.get("metadata", {})
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime", "papermill"):
            meta.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    for key in ("widgets", "papermill"):
        out.metadata.pop(key, None)
    return out


def strip_files(paths: Iterable[Path | str] | None = None) -> list[Path]:
    """Strip notebook files in place (default: every one in ``notebooks/``);
    returns the ones that changed. ``python -m leaklab.report strip`` runs it."""
    changed = []
    for path in (Path(p) for p in (paths or notebooks())):
        nb = read_notebook(path)
        if unstripped_cells(nb):
            nbformat.write(strip_notebook(nb), str(path))
            changed.append(path)
    return changed


def unstripped_cells(nb: nbformat.NotebookNode) -> list[str]:
    """What a committed notebook should not carry, one line per problem."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {i}: {len(cell.outputs)} output(s)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i}: execution_count {cell.execution_count}")
        if "execution" in cell.get("metadata", {}):
            problems.append(f"cell {i}: execution timing metadata")
        if INJECTED_TAG in _tags(cell):
            problems.append(f"cell {i}: injected parameters")
    if "widgets" in nb.metadata:
        problems.append("notebook metadata: widget state")
    return problems


def python_source(cell_source: str) -> str:
    """A cell's source as plain Python (IPython ``%magics`` and ``!shell``
    lines transformed the way the kernel does)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(cell_source)


@dataclasses.dataclass(frozen=True)
class Definition:
    """A function, class or lambda defined in a notebook cell."""

    cell: int
    line: int
    kind: str
    name: str

    def __str__(self) -> str:
        return f"cell {self.cell}, line {self.line}: {self.kind} {self.name}"


_DEFINITION_NODES = {
    ast.FunctionDef: "def",
    ast.AsyncFunctionDef: "async def",
    ast.ClassDef: "class",
    ast.Lambda: "lambda",
}


def definitions(nb: nbformat.NotebookNode) -> list[Definition]:
    """Every function, class and lambda defined in the notebook's code cells.

    Notebooks stay thin: anything worth a definition lives in the package,
    with a test.

    Raises:
        SyntaxError: a cell that does not parse (top-level ``await`` is fine).
    """
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tree = ast.parse(python_source(cell.source), filename=f"<cell {i}>")
        for node in ast.walk(tree):
            kind = _DEFINITION_NODES.get(type(node))
            if kind is not None:
                found.append(Definition(i, node.lineno, kind, getattr(node, "name", "<lambda>")))
    return found


def notebooks(names: Iterable[str] | None = None, notebooks_dir: Path | None = None) -> list[Path]:
    """Paths of the named notebooks (default all, in reading order)."""
    return [notebook_path(n, notebooks_dir) for n in (names or NOTEBOOKS)]
