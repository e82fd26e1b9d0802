"""Installed like a library: the built wheel (from an sdist), installed (not editable) into a
fresh virtual environment outside the source tree, runs the reference
backend, copies the notebooks and executes one of the report's notebooks,
from a folder that is not the checkout.

Slow (it installs leaklab's dependencies into a new venv: pip's cache helps),
so ``extended``: ``.ci/run`` runs it after the suite.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from .test_packaging import ROOT

pytestmark = pytest.mark.extended

#: what a working checkout has that a build must not need, by folder
_NOT_SOURCE = {
    ".": {".git", ".venv", ".venv310", "build", "dist", "report", "leaklab-runs", ".pytest_cache", ".hypothesis"},
    "data": {"runs"},
    "leaklab": {"_data"},
}


def _ignore(folder: str, names: list[str]) -> set[str]:
    rel = os.path.relpath(folder, ROOT)
    return {n for n in names if n in _NOT_SOURCE.get(rel, ()) or n == "__pycache__" or n.endswith(".egg-info")
            or n == ".ipynb_checkpoints"}


def _run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(args)} exited {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _bin(venv: Path, name: str) -> str:
    return str(venv / ("Scripts" if os.name == "nt" else "bin") / name)


@pytest.mark.timeout(1500)  # about 3 min on 2 cores with a warm pip cache; most of it installing
def test_the_wheel_installed_in_a_fresh_venv_runs_from_anywhere(tmp_path):
    started = time.monotonic()
    # GIVEN the wheel, built from a copy of the sources (the checkout is left as it is)
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=_ignore)
    dist = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LEAKLAB_RUNS_DIR")}
    # from an sdist where setuptools is here to make one: MANIFEST.in must carry what setup.py copies
    built_from = src
    if importlib.util.find_spec("setuptools") is not None:
        _run([sys.executable, "setup.py", "-q", "sdist", "-d", str(dist)], cwd=src, env=env, timeout=300)
        (built_from,) = dist.glob("leaklab-*.tar.gz")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(built_from)], cwd=tmp_path,
         env=env, timeout=300)
    (wheel,) = dist.glob("leaklab-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n for n in zf.namelist() if "/_data/" in n}
    assert {"leaklab/_data/reference/conf.yaml", "leaklab/_data/reference/targets/reference.toml",
            "leaklab/_data/notebooks/00_quickstart.ipynb"} <= shipped, sorted(shipped)
    assert len([n for n in shipped if n.endswith(".ipynb")]) == 7, sorted(shipped)
    shutil.rmtree(src)  # nothing of the sources is left to fall back on
    # AND a fresh venv with the wheel installed, not editable
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env, timeout=120)
    _run([_bin(venv, "python"), "-m", "pip", "install", "-q", str(wheel)], cwd=tmp_path, env=env, timeout=900)
    installed = time.monotonic()
    env["PATH"] = os.pathsep.join([str(Path(_bin(venv, "python")).parent), env.get("PATH", "")])
    work = tmp_path / "elsewhere"
    work.mkdir()

    # THEN leaklab finds its files inside the installed package
    where = _run([_bin(venv, "python"), "-c", "import leaklab, leaklab.resources as r; "
                  "print(r.source_checkout()); print(r.notebooks_dir()); print(r.reference_data_dir())"],
                 cwd=work, env=env, timeout=60).stdout.split()
    site = str(venv)
    assert where[0] == "None", where
    assert all(p.startswith(site) and "_data" in p for p in where[1:]), where

    # WHEN it runs the reference backend THEN the cycles run and are judged
    run = _run([_bin(venv, "leaklab"), "run", "--target", "reference", "--cycles", "3"], cwd=work, env=env, timeout=300)
    assert "judged 3 of 3 cycles" in run.stdout, run.stdout
    assert (work / "leaklab-runs").is_dir()

    # WHEN the notebooks are copied into a folder of the user's THEN all seven are there
    copied = _run([_bin(venv, "leaklab"), "notebooks", "mine"], cwd=work, env=env, timeout=60)
    assert "7 notebook(s) written to" in copied.stdout
    assert len(list((work / "mine").glob("*.ipynb"))) == 7

    # WHEN one notebook of the report runs from the packaged copy THEN it executes without error
    report = _run([_bin(venv, "python"), "-c",
                   "from leaklab.report.build import build_report\n"
                   "b = build_report('report', notebooks=['00_quickstart'], cycles=3)\n"
                   "print(b.path); print([(r.name, r.error) for r in b.runs])\n"
                   "raise SystemExit(1 if b.failed else 0)"], cwd=work, env=env, timeout=600)
    assert "('00_quickstart', None)" in report.stdout, report.stdout
    assert (work / "report" / "00_quickstart.html").is_file()
    print(f"wheel test: build + venv + install {installed - started:.0f} s, "
          f"run + notebooks + one notebook {time.monotonic() - installed:.0f} s")
