"""Where the shipped files are found, and copying the notebooks into a folder
of the user's (never overwriting their edits without force)."""

from __future__ import annotations

import json
import pytest

from leaklab import resources
from leaklab.cli import main

from .test_packaging import ROOT

SEVEN = ["00_quickstart", "01_reproduce_the_symptom", "02_who_keeps_it_alive", "03_checklist",
         "04_prove_the_fix", "05_your_backend", "06_hunt"]


def test_a_checkout_uses_its_own_notebooks_and_data():
    # GIVEN leaklab imported from this repository THEN its top-level folders are used (no copy)
    assert resources.source_checkout() == ROOT
    assert resources.notebooks_dir() == ROOT / "notebooks"
    assert resources.reference_data_dir() == ROOT / "data"
    assert resources.reference_target_file() == ROOT / "data" / "targets" / "reference.toml"
    assert resources.notebook_names() == SEVEN


def test_the_backend_and_the_report_read_them_from_there():
    from leaklab.backend.config import DEFAULT_CONF_DIR
    from leaklab.report.notebooks import NOTEBOOKS, NOTEBOOKS_DIR

    assert DEFAULT_CONF_DIR == resources.reference_data_dir()
    assert NOTEBOOKS_DIR == resources.notebooks_dir()
    assert list(NOTEBOOKS) == resources.notebook_names()


def test_no_module_finds_them_relative_to_its_own_file():
    # the wheel has no repository around the package: `__file__/../..` finds nothing there
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "leaklab").rglob("*.py")
                 if ".parents[2]" in p.read_text(encoding="utf-8") or '"..", ".."' in p.read_text(encoding="utf-8")]
    assert not offenders, offenders


def test_copy_notebooks_writes_stripped_copies_then_leaves_them(tmp_path):
    dest = tmp_path / "mine"
    # WHEN copied into a new folder
    written = resources.copy_notebooks(dest)
    # THEN all seven are there, without outputs, and runnable as the report's source
    assert [p.stem for p in written] == SEVEN
    for path in written:
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert all(c.get("outputs", []) == [] and c.get("execution_count") is None
                   for c in nb["cells"] if c["cell_type"] == "code")
    assert resources.check_notebooks_dir(dest) == dest
    # AND copying again writes nothing (they are the kit's)
    assert resources.copy_notebooks(dest) == []


def test_edited_notebooks_are_not_overwritten_without_force(tmp_path):
    dest = tmp_path / "mine"
    resources.copy_notebooks(dest)
    edited = dest / "03_checklist.ipynb"
    nb = json.loads(edited.read_text(encoding="utf-8"))
    nb["cells"][0]["source"] = "# my notes"
    edited.write_text(json.dumps(nb), encoding="utf-8")
    (dest / "06_hunt.ipynb").unlink()
    # WHEN copied again without force THEN it refuses, naming the edited one, and writes nothing
    with pytest.raises(resources.NotebooksExistError) as info:
        resources.copy_notebooks(dest)
    assert info.value.edited == [edited]
    assert "03_checklist.ipynb" in str(info.value) and "--force" in str(info.value)
    assert not (dest / "06_hunt.ipynb").exists()
    assert "my notes" in edited.read_text(encoding="utf-8")
    # WHEN forced THEN both are written again
    assert [p.name for p in resources.copy_notebooks(dest, force=True)] == ["03_checklist.ipynb", "06_hunt.ipynb"]


def test_a_folder_without_the_notebooks_names_the_missing(tmp_path):
    (tmp_path / "00_quickstart.ipynb").write_text("{}")
    with pytest.raises(resources.MissingNotebooksError) as info:
        resources.check_notebooks_dir(tmp_path)
    assert info.value.missing == [f"{n}.ipynb" for n in SEVEN[1:]]
    assert "lacks 6 of leaklab's notebooks: 01_reproduce_the_symptom.ipynb," in str(info.value)
    assert resources.check_notebooks_dir(tmp_path, ["00_quickstart"]) == tmp_path


def test_the_cli_copies_refuses_and_checks(tmp_path, capsys):
    dest = tmp_path / "nb"
    assert main(["notebooks", str(dest)]) == 0
    assert "7 notebook(s) written to" in capsys.readouterr().out
    (dest / "00_quickstart.ipynb").write_text("{}", encoding="utf-8")
    (dest / "05_your_backend.ipynb").unlink()
    # an edited notebook: refused, exit status 2
    assert main(["notebooks", str(dest)]) == 2
    assert "not overwriting 1 notebook(s)" in capsys.readouterr().err
    # a folder missing one: the report says which, before any kernel starts
    assert main(["report", "--notebooks", str(dest), "--out", str(tmp_path / "r")]) == 2
    assert "lacks 1 of leaklab's notebooks: 05_your_backend.ipynb" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["notebooks", str(dest), "--force"]) == 0


def test_the_build_strips_as_the_kit_does():
    # setup.py cannot import leaklab: its copy of the stripping must agree
    namespace: dict = {"__file__": str(ROOT / "setup.py"), "__name__": "setup"}
    source = (ROOT / "setup.py").read_text(encoding="utf-8").replace("setup(cmdclass=", "dict(cmdclass=")
    exec(compile(source, "setup.py", "exec"), namespace)
    messy = json.dumps({"cells": [{"cell_type": "code", "source": "1", "metadata": {"execution": {"x": 1}},
                                   "outputs": [{"output_type": "stream", "text": "1"}], "execution_count": 3}],
                        "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    assert namespace["strip_notebook"](messy) == resources.strip_notebook_json(messy)
