"""Fixtures for attach tests: a private copy of the upstream-shaped app, and
an import state (sys.path, the app's package) put back after each test."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

OLV_APP = Path(__file__).resolve().parent / "olv_app"
PACKAGE = "open_llm_vtuber"


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` -> a digest of its bytes ("dir" for folders)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def workdirs() -> set[str]:
    """Temporary working folders of the olv profile that exist now."""
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("leaklab-olv-")}


@pytest.fixture
def olv_app(tmp_path: Path) -> Path:
    """A copy of tests/attach/olv_app the test may break or check for writes."""
    dst = tmp_path / "olv_app"
    shutil.copytree(OLV_APP, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


@pytest.fixture(scope="session", autouse=True)
def private_tmp(tmp_path_factory):
    """A temporary folder of this test run only, for the olv profile's
    working folders (and the processes the tests start): what another
    program on the machine leaves in /tmp is not ours to count."""
    folder = tmp_path_factory.mktemp("olv-tmp")
    saved_env, saved_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    yield folder
    tempfile.tempdir = saved_dir
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env


@pytest.fixture(autouse=True)
def clean_imports():
    """Each test imports the app afresh and leaves sys.path as it found it;
    the current directory and the temporary folders are checked too."""
    path_before = list(sys.path)
    cwd_before = os.getcwd()
    dirs_before = workdirs()
    yield
    sys.path[:] = path_before
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    assert os.getcwd() == cwd_before, "the current directory was not restored"
    assert workdirs() <= dirs_before, f"temporary working folders left: {sorted(workdirs() - dirs_before)}"
