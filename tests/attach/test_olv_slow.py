"""Why it gets slow, on the upstream-shaped app: with a few thousand stored
histories, each page load lists and parses every one of them on the event
loop, and ``leaklab run`` names that function, its milliseconds and what it
scales with."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.attach.conftest import OLV_APP, tree_digest
from tests.conftest import server_children

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = 3000


def stored_histories(app: Path, n: int) -> Path:
    """``n`` more chat histories (six messages each) in the app's one
    character folder of ``chat_history/``; that folder."""
    (folder,) = [p for p in (app / "chat_history").iterdir() if p.is_dir()]
    for i in range(n):
        messages = [{"role": "metadata", "timestamp": "2025-01-01T00:00:00"}]
        messages += [{"role": "human" if j % 2 == 0 else "ai", "content": f"history {i}, message {j}: " + "lorem " * 12,
                      "timestamp": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{j:02d}:00:00"}
                     for j in range(6)]
        (folder / f"2025-01-01_00-00-00_{i:032x}.json").write_text(json.dumps(messages), encoding="utf-8")
    return folder


@pytest.mark.extended
@pytest.mark.timeout(900)
def test_run_names_the_function_that_reads_every_stored_history_on_each_page_load(tmp_path):
    # GIVEN a user's checkout whose character has a few thousand stored chat histories
    app = tmp_path / "my-backend"
    shutil.copytree(OLV_APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    folder = stored_histories(app, HISTORIES)
    stored = len(list(folder.glob("*.json")))
    before = tree_digest(app / "chat_history")
    reader = app / "src" / "open_llm_vtuber" / "chat_history_manager.py"
    line = next(i for i, text in enumerate(reader.read_text().splitlines(), 1)
                if text.startswith("def get_history_list"))
    work = tmp_path / "work"
    work.mkdir()
    # WHEN they run page-faithful sessions (each connect loads the page: fetch-history-list...)
    proc = subprocess.run([sys.executable, "-m", "leaklab.cli", "run", "--target", "olv", "--app-dir", str(app),
                           "--scenario", "connect,close", "--cycles", "6"], cwd=work, capture_output=True, text=True,
                          timeout=800, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    # THEN the run names the function that holds the loop on each page load, where it is, its
    # milliseconds, and the store it scales with, per stored history
    found = re.search(r"blocks the loop each cycle: open_llm_vtuber\.chat_history_manager\.get_history_list "
                      r"\(chat_history_manager\.py:(\d+)\): ([\d.]+) ms a time \(([\d.]+) ms in it\), "
                      r"in (\d) of 6 cycles"
                      r".*; scales with chat_history_files: (\d+) stored, ([\d.e-]+) ms each", proc.stdout)
    assert found, proc.stdout
    where, held, own, cycles, size, each = found.groups()
    print(found.group(0))  # the real numbers, for the record (-s)
    assert int(where) == line
    assert int(cycles) >= 5 and float(held) > 20 and float(own) > 20
    assert stored <= int(size) <= stored + 2  # the page load's new (empty) history, deleted by the next one
    assert float(each) == pytest.approx(float(own) / int(size), rel=0.06)
    # and the user's files are what they were, nothing left running
    assert tree_digest(app / "chat_history") == before
    assert server_children() == []
