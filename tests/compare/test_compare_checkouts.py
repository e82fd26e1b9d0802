"""A fix compared with the revision before it: a temporary git repository
whose committed app never closes its sessions and whose working tree fixes
that. The revision is checked out into a temporary worktree, run in its own
process, and removed; the user's tree and repository are left as they were."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leaklab.compare import AgainstError, checkouts, the_change

pytestmark = [pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
              pytest.mark.lowest_env]  # the users' own environment compares their revisions

ROOT = Path(__file__).resolve().parents[2]
APP = '''from leaklab.backend import create_app as _create


def create_app():
    return _create({faults!r})
'''


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "mine"
    repo.mkdir()
    target = (ROOT / "data" / "targets" / "reference.toml").read_text()
    (repo / "backend.toml").write_text(target.replace('app = "leaklab.backend:create_app"',
                                                      'app = "mybackend:create_app"\napp_dir = "."'))
    (repo / "mybackend.py").write_text(APP.format(faults=["C9"]))  # committed: close() never runs
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "before")
    (repo / "mybackend.py").write_text(APP.format(faults=[]))  # the fix, not committed
    return repo


@pytest.mark.extended  # end to end, 5-10 s: run by .ci/run after the suite
def test_the_fix_against_head_shows_close_running_and_leaves_no_worktree(repo, tmp_path):
    status = git(repo, "status", "--porcelain")
    # WHEN the working tree is compared with HEAD, from the command line
    done = subprocess.run([sys.executable, "-m", "leaklab.cli", "compare", "--target-file", str(repo / "backend.toml"),
                           "--against", "HEAD", "--items", "none", "--scenario", "open-close", "--cycles", "3",
                           "--hunt", "none", "--timeline", "0.5", "--json"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    rows = {r["metric"]: r for r in result["rows"]}
    # THEN close() ran for none of the sessions before the fix, for all after
    close = rows["lifecycle:ServiceContext.close"]
    assert (close["before"], close["after"], close["change"]) == ("ran for 0 of 3", "ran for 3 of 3", "fixed")
    # nothing claimed that did not change
    assert not [r for r in result["rows"] if r["change"] in ("new leak", "still leaks", "can't tell")], result["rows"]
    assert result["before"]["source"].startswith("HEAD (") and any("removed afterwards" in n for n in result["notes"])
    # the worktree and its metadata are gone; the user's tree is as it was
    assert git(repo, "worktree", "list").count("\n") == 1
    assert git(repo, "status", "--porcelain") == status
    assert Path(result["path"]).is_file() and json.loads(Path(result["path"]).read_text())["rows"] == result["rows"]
    worktree = Path(result["before"]["spec"]["app_dir"])
    assert worktree.parent.name.startswith("leaklab-against-") and not worktree.parent.exists()
    # and the change, one hunk in create_app, ran once on the after side (the app built once)
    (hunk,) = result["coverage"]["open-close"]["hunks"]
    assert (hunk["file"], hunk["function"], hunk["status"], hunk["ran"]) == ("mybackend.py", "create_app", "ran", 1)
    assert close["coverage"].startswith("your change: 1 hunk — `create_app` (ran 1×")


def test_against_names_something_comparable_or_says_what_it_tried(repo):
    with pytest.raises(AgainstError, match="not a folder, a target file or a git revision"), \
            checkouts(target_file=repo / "backend.toml", against="no-such-branch"):
        pass
    with pytest.raises(AgainstError, match="compares your code with another version"), \
            checkouts("reference", against="HEAD"):
        pass
    # a folder is a second checkout, as is
    with checkouts(target_file=repo / "backend.toml", against=repo) as (before, after):
        assert before.spec["app_dir"] == str(repo.resolve()) and before.name == "before" and after.name == "after"


def test_an_import_path_is_compared_with_another_or_with_a_second_folder_on_sys_path(tmp_path, monkeypatch):
    for name, faults in (("a", ["C9"]), ("b", [])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cmp_backend_app.py").write_text(APP.format(faults=faults))
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    # two import paths
    with checkouts("cmp_backend_app:create_app", against="other_mod:create_app") as (before, after):
        assert before.spec["target"] == "other_mod:create_app" and after.spec["target"] == "cmp_backend_app:create_app"
    # a second folder: the same import path, found there first in the child
    with checkouts("cmp_backend_app:create_app", against=tmp_path / "b") as (before, after):
        assert before.spec["target"] == after.spec["target"] and before.sys_path == (str((tmp_path / "b").resolve()),)
        assert after.sys_path == ()
    # the change between the two folders: the one file, its hunk in create_app
    with checkouts("cmp_backend_app:create_app", against=tmp_path / "b") as (before, after):
        change = the_change(before, after)
        assert [(h.file, h.function) for h in change.hunks] == [("cmp_backend_app.py", "create_app")]
    # neither, and not in a git repository: said
    with pytest.raises(AgainstError, match="not a folder, an import path"), \
            checkouts("cmp_backend_app:create_app", against="HEAD~1"):
        pass
