"""Where the files leaklab ships live: the seven notebooks, and the reference
backend's ``conf.yaml``, ``characters/`` and target file.

In the repository they are the top-level ``notebooks/`` and ``data/`` (the
source of truth, edited there). A built wheel carries a copy of them as
package data, ``leaklab/_data/notebooks`` and ``leaklab/_data/reference``
(``setup.py`` puts them there at build time; nothing is copied in git).
Both are found from the imported package itself, through
:mod:`importlib.resources`, never from ``__file__`` and ``../..``: a
wheel installed in a ``site-packages`` has no repository around it, and
where the package sits says which case this is:

1. a source checkout (an editable install, or ``PYTHONPATH`` on the
   checkout): the folder holding the ``leaklab`` package also holds a
   ``pyproject.toml`` whose project is named ``leaklab``; its ``notebooks/``
   and ``data/`` are used, so an edit there is what runs, without a rebuild;
2. an installed wheel: ``leaklab/_data`` exists inside the package;
3. an editable install whose package is mapped from somewhere else: the
   distribution's ``direct_url.json`` (:mod:`importlib.metadata`) records
   ``dir_info.editable`` and the project's folder.

Nothing here raises on a missing folder: the paths are returned, and
:func:`check_notebooks_dir` says what is missing where it matters.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = [
    "PACKAGE_DATA",
    "MissingNotebooksError",
    "NotebooksExistError",
    "check_notebooks_dir",
    "copy_notebooks",
    "notebook_names",
    "notebook_paths",
    "notebooks_dir",
    "reference_data_dir",
    "reference_target_file",
    "source_checkout",
    "strip_notebook_json",
]

PACKAGE_DATA = "_data"
"""The folder inside the ``leaklab`` package a built wheel carries the files in."""


class MissingNotebooksError(FileNotFoundError):
    """A notebooks folder that lacks some of the kit's notebooks.

    Attributes:
        missing: the names (``00_quickstart.ipynb``...) not found.
    """

    def __init__(self, folder: Path, missing: Sequence[str]) -> None:
        self.folder = folder
        self.missing = list(missing)
        super().__init__(f"{folder} lacks {len(self.missing)} of leaklab's notebooks: {', '.join(self.missing)} "
                         "(`leaklab notebooks DIR` copies them there)")


class NotebooksExistError(FileExistsError):
    """Copying the notebooks would overwrite ones that differ from the kit's.

    Attributes:
        edited: the paths that would be overwritten.
    """

    def __init__(self, edited: Sequence[Path]) -> None:
        self.edited = list(edited)
        super().__init__(f"not overwriting {len(self.edited)} notebook(s) that differ from leaklab's (your edits or "
                         f"outputs): {', '.join(p.name for p in self.edited)} in {self.edited[0].parent}; "
                         "--force overwrites them")


def _package() -> Path:
    root = importlib.resources.files("leaklab")
    if not isinstance(root, Path):  # a zip import: no folder to hand to a kernel
        raise FileNotFoundError(f"leaklab is imported from {root}, not from a folder: install it from a wheel")
    return root


def _names_leaklab(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return False
    return re.search(r"""^name\s*=\s*["']leaklab["']""", text, re.MULTILINE) is not None


def _editable_project() -> Path | None:
    try:
        text = importlib.metadata.distribution("leaklab").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    try:
        info = json.loads(text or "{}")
    except ValueError:
        return None
    url = urlparse(str(info.get("url", "")))
    if not (info.get("dir_info") or {}).get("editable") or url.scheme != "file":
        return None
    folder = Path(unquote(url.path))
    return folder if _names_leaklab(folder / "pyproject.toml") else None


def source_checkout() -> Path | None:
    """The repository folder this ``leaklab`` is imported from, or ``None``
    for an installed wheel (see the module's docstring for how it is told)."""
    package = _package()
    if _names_leaklab(package.parent / "pyproject.toml"):
        return package.parent
    if (package / PACKAGE_DATA).is_dir():
        return None
    return _editable_project()


def notebooks_dir() -> Path:
    """The kit's notebooks: ``notebooks/`` of a checkout, or the wheel's copy."""
    checkout = source_checkout()
    return checkout / "notebooks" if checkout is not None else _package() / PACKAGE_DATA / "notebooks"


def reference_data_dir() -> Path:
    """The reference backend's ``conf.yaml`` and ``characters/`` (and ``targets/``):
    ``data/`` of a checkout, or the wheel's copy."""
    checkout = source_checkout()
    return checkout / "data" if checkout is not None else _package() / PACKAGE_DATA / "reference"


def reference_target_file() -> Path:
    """The reference backend written as a target file (``targets/reference.toml``)."""
    return reference_data_dir() / "targets" / "reference.toml"


def notebook_paths(folder: Path | None = None) -> list[Path]:
    """The notebooks in ``folder`` (default the kit's), in reading order."""
    return sorted((folder or notebooks_dir()).glob("[0-9][0-9]_*.ipynb"))


def notebook_names() -> list[str]:
    """The kit's notebooks' names (``00_quickstart``...), in reading order."""
    return [p.stem for p in notebook_paths()]


def check_notebooks_dir(folder: Path | str, names: Iterable[str] | None = None) -> Path:
    """``folder`` if it holds every notebook named (default: all the kit's).

    Raises:
        MissingNotebooksError: naming the notebooks it lacks.
    """
    folder = Path(folder).expanduser()
    wanted = [n if n.endswith(".ipynb") else f"{n}.ipynb" for n in (names if names is not None else notebook_names())]
    missing = [n for n in wanted if not (folder / n).is_file()]
    if missing:
        raise MissingNotebooksError(folder, missing)
    return folder


def strip_notebook_json(text: str) -> str:
    """A notebook's JSON with outputs and execution counts removed, written as
    nbformat writes it (``setup.py`` strips the wheel's copies the same way)."""
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def copy_notebooks(dest: Path | str, *, force: bool = False) -> list[Path]:
    """Copy the kit's notebooks, stripped, into ``dest`` (created), to open
    and edit in JupyterLab; ``leaklab report --notebooks DEST`` runs them.

    A notebook already there that is the same as the kit's is left as it is.

    Args:
        dest: the folder.
        force: overwrite notebooks there that differ from the kit's.

    Returns:
        The paths written (those already up to date are not).

    Raises:
        NotebooksExistError: without ``force``, when a notebook there differs
            (edited, or carrying outputs), naming them all; nothing is written.
        MissingNotebooksError: this leaklab has no notebooks to copy.
    """
    dest = Path(dest).expanduser()
    sources = notebook_paths()
    if not sources:
        raise MissingNotebooksError(notebooks_dir(), ["*.ipynb"])
    planned = [(dest / src.name, strip_notebook_json(src.read_text(encoding="utf-8"))) for src in sources]
    differ = [path for path, text in planned if path.exists() and path.read_text(encoding="utf-8") != text]
    if differ and not force:
        raise NotebooksExistError(differ)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for path, text in planned:
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
