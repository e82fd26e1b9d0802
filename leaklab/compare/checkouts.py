"""The two sides of a comparison: the code given, and what ``--against`` names.

``--against`` is a second folder (another checkout), a second target file or
import path, or a git revision of the repository the code lives in. A
revision is checked out into a temporary git worktree (``git worktree add
--detach``), used read-only and removed afterwards with its metadata
(``git worktree remove`` + ``prune``): the user's working tree is not
touched. What the app folder has that the revision does not track (a
``conf.yaml`` made from a template, models, caches) is taken from the given
folder, read-only, and said in the side's notes.

Each side is a spec a child process resolves with
:func:`~leaklab.targets.resolve_target` (two checkouts of one package can't
share an interpreter), plus folders put first on its ``sys.path``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .._platform import link_or_copy
from ..targets import Target, UnknownTargetError, is_target_file, resolve_target

__all__ = ["AgainstError", "Side", "app_root", "checkouts", "git_revision"]

#: Seconds a git command may take (a worktree of a large repository).
GIT_TIMEOUT_S = 120.0


class AgainstError(UnknownTargetError):
    """``--against`` names nothing that can be compared (says what it tried)."""


@dataclasses.dataclass
class Side:
    """One backend of a comparison.

    Attributes:
        name: ``before`` / ``after``, or a variant's name.
        spec: how a child process resolves it (``resolve_target``'s keywords).
        sys_path: folders put first on the child's ``sys.path``.
        source: what it is, in the user's words (a folder, ``rev abc123``...).
        notes: what was done to make it runnable.
        target: the resolved target's name, where it was resolved here.
    """

    name: str
    spec: dict[str, Any]
    sys_path: tuple[str, ...] = ()
    source: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)
    target: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "notes": list(self.notes),
                "sys_path": list(self.sys_path), "spec": {k: v for k, v in self.spec.items() if k != "options"}}


def _git(repo: Path, *args: str, timeout_s: float = GIT_TIMEOUT_S) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=timeout_s, check=False,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0"}, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise AgainstError("git is not installed: a revision can't be checked out (give a folder instead)") from None
    except subprocess.TimeoutExpired:
        raise AgainstError(f"git {' '.join(args)} took over {timeout_s:.0f} s in {repo}") from None
    if done.returncode != 0:
        raise AgainstError(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


def git_revision(folder: Path, revision: str) -> tuple[Path, str] | None:
    """``(repository root, full commit)`` when ``folder`` is in a git
    repository and ``revision`` names a commit there; ``None`` otherwise."""
    if shutil.which("git") is None:
        return None
    try:
        root = Path(_git(folder, "rev-parse", "--show-toplevel"))
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except AgainstError:
        return None
    return (root, commit) if commit else None


@contextlib.contextmanager
def _worktree(root: Path, commit: str, revision: str) -> Iterator[Path]:
    """A detached worktree of ``commit`` in a temporary folder; removed on exit."""
    temp = Path(tempfile.mkdtemp(prefix="leaklab-against-"))
    tree = temp / "tree"
    try:
        _git(root, "worktree", "add", "--detach", "--quiet", str(tree), commit)
        yield tree
    finally:
        with contextlib.suppress(AgainstError):
            if tree.exists():
                _git(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(temp, ignore_errors=True)
        with contextlib.suppress(AgainstError):
            _git(root, "worktree", "prune")


def _fill_from(given: Path, checkout: Path) -> list[str]:
    """Link what ``given`` has at its top level and ``checkout`` lacks
    (untracked: a conf.yaml, models, caches); the names linked."""
    taken = []
    if not checkout.is_dir():
        return taken
    for entry in sorted(given.iterdir()):
        if entry.name in (".git", "__pycache__") or (checkout / entry.name).exists():
            continue
        how = link_or_copy(entry, checkout / entry.name)
        if how != "skipped":  # a large folder that can't be linked: the app runs without it, or says so
            taken.append(entry.name if how == "symlink" else f"{entry.name} ({how})")
    return taken


def _module_root(import_path: str) -> Path | None:
    """The ``sys.path`` folder an import path's top package is found in."""
    module = import_path.partition(":")[0]
    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    origin = Path(spec.origin).resolve()
    return origin.parent.parent if origin.name == "__init__.py" else origin.parent


def _kind(target: Target) -> str:
    spec = target.spec or {}
    if spec.get("target_file"):
        return "file"
    if spec.get("target") == "olv":
        return "olv"
    if spec.get("target") == "reference":
        return "reference"
    return "import"


@contextlib.contextmanager
def checkouts(
    target: str | os.PathLike[str] | None = None,
    *,
    against: str | os.PathLike[str],
    app_dir: str | os.PathLike[str] | None = None,
    target_file: str | os.PathLike[str] | None = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
) -> Iterator[tuple[Side, Side]]:
    """``(before, after)``: ``after`` is the code named by the target flags
    (resolved here, so a bad one fails first), ``before`` is ``against``.

    Raises:
        AgainstError: ``against`` is none of a folder, a target file, an
            import path or a revision of the code's git repository; or the
            target is the reference (its variants are :func:`prove_fix_async`'s).
    """
    after_target = resolve_target(target, app_dir=app_dir, target_file=target_file, faults=faults, options=options,
                                  watch=watch)
    spec = dict(after_target.spec or {})
    kind = _kind(after_target)
    text = os.fspath(against)
    after = Side("after", spec, source=_describe(kind, spec), target=after_target.name)
    if kind == "reference":
        raise AgainstError("--against compares your code with another version of it: give --target olv --app-dir, "
                           "--target-file or an import path (the reference backend's fixes are planted fault "
                           "switches: compare them with `leaklab.compare.prove_fix`)")
    folder = Path(text).expanduser()
    if kind == "import":
        if ":" in text and not folder.exists():
            yield Side("before", {**spec, "target": text}, source=text), after
            return
        root = _module_root(spec["target"])
        if folder.is_dir():
            yield Side("before", dict(spec), (str(folder.resolve()),), source=str(folder.resolve())), after
            return
        found = git_revision(root, text) if root is not None else None
        if found is None:
            raise AgainstError(f"--against {text!r}: not a folder, an import path (package.module:factory) or a "
                               f"git revision of the repository {spec['target']} is in")
        repo, commit = found
        with _worktree(repo, commit, text) as tree:
            where = tree / root.relative_to(repo) if root is not None else tree
            yield Side("before", dict(spec), (str(where),), source=f"{text} ({commit[:10]})",
                       notes=[f"git worktree of {commit[:10]} at {tree}, removed afterwards"]), after
        return
    # olv or a target file: a folder is the app folder; a revision is checked out
    given = Path(spec.get("app_dir") or _file_app_dir(spec) or ".")
    if kind == "file" and is_target_file(text) and folder.is_file():
        yield Side("before", {**spec, "target_file": str(folder.resolve())}, source=str(folder.resolve())), after
        return
    if folder.is_dir():
        yield Side("before", {**spec, "app_dir": str(folder.resolve())}, source=str(folder.resolve())), after
        return
    found = git_revision(given, text)
    if found is None:
        raise AgainstError(f"--against {text!r}: not a folder{', a target file' if kind == 'file' else ''} or a git "
                           f"revision of the repository {given} is in")
    repo, commit = found
    with _worktree(repo, commit, text) as tree:
        app = tree / given.resolve().relative_to(repo)
        side_spec = {**spec, "app_dir": str(app)}
        notes = [f"git worktree of {commit[:10]} at {tree}, removed afterwards"]
        if kind == "file":
            tracked = tree / Path(spec["target_file"]).resolve().relative_to(repo) if _inside(spec["target_file"], repo) else None
            if tracked is not None and tracked.is_file():
                side_spec["target_file"] = str(tracked)
        taken = _fill_from(given.resolve(), app)
        if taken:
            notes.append(f"not in {text}, taken from {given} (read-only): {', '.join(taken)}")
        yield Side("before", side_spec, source=f"{text} ({commit[:10]})", notes=notes), after


def _inside(path: str, repo: Path) -> bool:
    try:
        Path(path).resolve().relative_to(repo)
    except ValueError:
        return False
    return True


def app_root(side: Side) -> Path | None:
    """The folder (or file) of a side's own code: the app folder of an olv
    app or a target file; an import path's top package, in the side's first
    ``sys.path`` folder if it has one. ``None``: not found."""
    spec = side.spec
    if spec.get("app_dir") or spec.get("target_file"):
        folder = spec.get("app_dir") or _file_app_dir(spec)
        return Path(folder).resolve() if folder else None
    target = str(spec.get("target") or "")
    if not target or target in ("reference", "olv"):
        return None
    top = target.partition(":")[0].split(".")[0]
    base = Path(side.sys_path[0]) if side.sys_path else _module_root(target)
    if base is None:
        return None
    for candidate in (base / top, base / f"{top}.py"):
        if candidate.exists():
            return candidate.resolve()
    return None


def _file_app_dir(spec: Mapping[str, Any]) -> str | None:
    """A target file's own ``app_dir`` (the folder it names, or its own)."""
    from ..targets.file import read_target_file

    data = read_target_file(Path(spec["target_file"])) if spec.get("target_file") else {}
    base = Path(spec["target_file"]).parent if spec.get("target_file") else Path(".")
    return str((base / data["app_dir"]).resolve()) if isinstance(data.get("app_dir"), str) else str(base.resolve())


def _describe(kind: str, spec: Mapping[str, Any]) -> str:
    if kind == "file":
        return str(spec.get("target_file")) + (f" (app {spec['app_dir']})" if spec.get("app_dir") else "")
    if kind == "olv":
        return f"olv {spec.get('app_dir')}"
    return str(spec.get("target"))
