"""Imports go one way, down the pipeline: a package imports only the ones
before it (parsed from the source, lazy imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "leaklab"
ORDER = ["_compat", "_platform", "metrics", "resources", "fakes", "backend", "targets", "serving", "driver", "probes", "analysis", "retention",
         "session", "checklist", "hunt", "compare", "report", "testing", "pytest_plugin", "cli"]
#: Upward imports kept on purpose, each inside one convenience method.
ALLOWED = {("session", "hunt"): "LeakSession.hunt(): the hunt on the session a notebook already has"}


def _imports(path: Path) -> set[str]:
    parts = path.relative_to(PACKAGE).parts
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(parts[:-1])[: len(parts) - node.level] if node.level > 1 else list(parts[:-1])
            names = [*base, *(node.module or "").split(".")] if node.module else base
            names = [n for n in names if n]
            out.add(names[0] if names else node.names[0].name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("leaklab."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("leaklab."))
    return out


def test_every_package_imports_only_the_ones_before_it():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        me = rel.parts[0].removesuffix(".py")
        if me == "__init__":
            continue
        assert me in ORDER, f"{me}: a new package; put it in ORDER where the pipeline has it"
        for other in _imports(path):
            if other in ORDER and other != me and ORDER.index(other) > ORDER.index(me) and (me, other) not in ALLOWED:
                wrong.append(f"{rel} imports leaklab.{other}")
    assert not wrong, wrong
