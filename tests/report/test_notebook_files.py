"""Notebook files as data: parameters injected after the tagged cell,
stripping, and the thin-notebook rule (no definitions)."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from leaklab.report.notebooks import (
    INJECTED_TAG,
    definitions,
    inject_parameters,
    parameter_names,
    strip_notebook,
    unstripped_cells,
)


def notebook(*sources: str, tagged: int = 0) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# title")] + [new_code_cell(s) for s in sources]
    nb.cells[1 + tagged].metadata["tags"] = ["parameters"]
    return nb


def test_injected_cell_follows_the_parameters_cell_with_declared_names_only():
    # GIVEN a notebook whose parameters cell declares cycles and faults
    nb = notebook("cycles = 20\nfaults = 'C8'", "print(cycles)")
    # WHEN the report passes cycles, faults and a name this notebook does not take
    out = inject_parameters(nb, {"cycles": 3, "faults": "none", "items": "C8"})
    # THEN one injected cell sits right after the parameters cell, without `items`
    assert out.cells[2].metadata["tags"] == [INJECTED_TAG]
    assert out.cells[2].source.splitlines()[1:] == ["cycles = 3", "faults = 'none'"]
    assert out.cells[3].source == "print(cycles)"
    # and the input is untouched
    assert len(nb.cells) == 3
    nbformat.validate(out)


def test_injecting_twice_replaces_the_injected_cell():
    nb = inject_parameters(notebook("cycles = 20"), {"cycles": 3})
    again = inject_parameters(nb, {"cycles": 5})
    assert [c.source for c in again.cells if INJECTED_TAG in c.metadata.get("tags", [])] == ["# Injected parameters\ncycles = 5"]


def test_injected_values_are_python_literals_even_inf():
    nb = inject_parameters(notebook("options = {}\nitems = None"), {"options": {"heavy_init_s": float("inf")}, "items": ["C8", "C9"]})
    ns: dict = {}
    exec(nb.cells[2].source, ns)  # noqa: S102 -- the test's own literal source
    assert ns["options"] == {"heavy_init_s": float("inf")} and ns["items"] == ["C8", "C9"]
    with pytest.raises(TypeError):
        inject_parameters(notebook("x = 1"), {"x": object()})


def test_no_parameters_cell_is_an_error():
    nb = notebook("x = 1")
    nb.cells[1].metadata = {}
    with pytest.raises(ValueError, match="parameters"):
        inject_parameters(nb, {"x": 2})


def test_parameter_names_in_order():
    assert parameter_names(notebook("target = 'reference'\ncycles: int = 3\na = b = 1")) == ["target", "cycles", "a", "b"]


def test_strip_removes_outputs_counts_and_injected_cells():
    nb = inject_parameters(notebook("cycles = 1", "cycles"), {"cycles": 2})
    nb.cells[-1].outputs = [new_output("execute_result", {"text/plain": "2"}, execution_count=3)]
    nb.cells[-1].execution_count = 3
    nb.cells[-1].metadata["execution"] = {"iopub.execute_input": "2026-11-21T20:00:00Z"}
    nb.metadata["widgets"] = {"state": {}}
    assert len(unstripped_cells(nb)) == 5
    stripped = strip_notebook(nb)
    assert unstripped_cells(stripped) == []
    assert [c.source for c in stripped.cells] == ["# title", "cycles = 1", "cycles"]


def test_definitions_finds_def_class_lambda_even_with_magics_and_await():
    nb = notebook(
        "%matplotlib inline\nx = await f()",
        "def helper():\n    pass",
        "class Thing:\n    pass",
        "async def go():\n    pass\nkey = lambda r: r",
    )
    found = [(d.cell, d.kind, d.name) for d in definitions(nb)]
    assert found == [(2, "def", "helper"), (3, "class", "Thing"), (4, "async def", "go"), (4, "lambda", "<lambda>")]
    assert definitions(notebook("%matplotlib inline\nfor g in groups:\n    display(g)")) == []


def test_strip_command_rewrites_only_notebooks_with_outputs(tmp_path):
    from leaklab.report.__main__ import main

    clean = tmp_path / "clean.ipynb"
    dirty = tmp_path / "dirty.ipynb"
    nbformat.write(notebook("cycles = 1"), clean)
    nb = notebook("cycles = 1")
    nb.cells[1].execution_count = 1
    nbformat.write(nb, dirty)
    before = clean.stat().st_mtime_ns
    assert main(["strip", str(clean), str(dirty)]) == 0
    assert clean.stat().st_mtime_ns == before
    assert unstripped_cells(nbformat.read(dirty, as_version=4)) == []
    assert main([]) == 2
