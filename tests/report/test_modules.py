"""The modules of leaklab.report import each other one way (no module
imports one that imports it back, lazy imports included) and stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[2] / "leaklab" / "report"

pytestmark = pytest.mark.lowest_env


def _imports(path: Path) -> set[str]:
    """The sibling modules a module of leaklab.report imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("leaklab.report."):
            found.add(node.module.split(".")[2])
    return found - {path.stem}


def _graph() -> dict[str, set[str]]:
    return {p.stem: _imports(p) for p in REPORT.glob("*.py") if p.stem not in ("__init__", "__main__")}


def _cycle(graph: dict[str, set[str]], start: str) -> list[str] | None:
    stack = [[start]]
    while stack:
        path = stack.pop()
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == start:
                return [*path, nxt]
            if nxt not in path:
                stack.append([*path, nxt])
    return None


def test_no_report_module_imports_one_that_imports_it_back():
    graph = _graph()
    cycles = [" -> ".join(c) for m in sorted(graph) if (c := _cycle(graph, m))]
    assert cycles == []
    # the pieces that were in a circle: both read the colours from style
    assert "tables" not in graph["story"] and {"style"} <= graph["story"] & graph["tables"]


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}, "a") == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}, "a") is None


@pytest.mark.parametrize("path", sorted(REPORT.glob("*.py")), ids=lambda p: p.name)
def test_each_module_is_under_600_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) < 600


def test_build_report_takes_the_arguments_of_build_report_async():
    import inspect

    from leaklab.report.build import build_report, build_report_async

    sync, run = inspect.signature(build_report), inspect.signature(build_report_async)
    assert list(sync.parameters.values()) == list(run.parameters.values())
    assert "notebooks_dir" in sync.parameters and sync.return_annotation == run.return_annotation
