"""The build step pyproject.toml cannot say: put the kit's notebooks and the
reference backend's files into the wheel as package data.

The top-level ``notebooks/`` and ``data/`` stay the source of truth in the
repository; ``build_py`` copies them into the built package as
``leaklab/_data/notebooks`` (stripped of outputs) and
``leaklab/_data/reference`` (``conf.yaml``, ``characters/``, ``targets/``;
never ``data/runs``). Nothing is copied in the source tree. ``MANIFEST.in``
puts the same files in the sdist, so a wheel built from the sdist has them.
``leaklab.resources`` finds them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: (source under the project, destination under leaklab/_data, glob patterns)
PACKAGE_DATA = [
    ("notebooks", "notebooks", ["[0-9][0-9]_*.ipynb"]),
    ("data", "reference", ["conf.yaml", "characters/*.yaml", "targets/*.toml", "targets/*.yaml"]),
]


def strip_notebook(text: str) -> str:
    """As ``leaklab.resources.strip_notebook_json`` (the build cannot import leaklab)."""
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


class BuildPyWithData(build_py):
    """``build_py``, then the notebooks and data into ``leaklab/_data``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads them from the checkout (leaklab.resources)
            return
        target = Path(self.build_lib) / "leaklab" / "_data"
        shutil.rmtree(target, ignore_errors=True)
        for source, dest, patterns in PACKAGE_DATA:
            found = sorted({p for pattern in patterns for p in (HERE / source).glob(pattern) if p.is_file()})
            if not found:
                raise SystemExit(f"leaklab build: nothing matches {patterns} in {HERE / source}")
            for path in found:
                out = target / dest / path.relative_to(HERE / source)
                out.parent.mkdir(parents=True, exist_ok=True)
                if path.suffix == ".ipynb":
                    out.write_text(strip_notebook(path.read_text(encoding="utf-8")), encoding="utf-8")
                else:
                    shutil.copyfile(path, out)


setup(cmdclass={"build_py": BuildPyWithData})
