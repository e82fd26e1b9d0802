"""On-disk growth: a directory tree's file count and size, a SQLite file's rows."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import BaseProbe, ProbeContext, Sample

__all__ = ["DirSnapshot", "FilesProbe", "SqliteSnapshot", "StoreProbe", "dir_snapshot", "sqlite_snapshot"]


@dataclasses.dataclass(frozen=True)
class DirSnapshot:
    """Files under a directory. Unpacks as ``files, size = dir_snapshot(p)``.

    Attributes:
        files: non-directory entries (regular files, symlinks, sockets...).
        bytes: sum of their sizes (``lstat``: symlinks are not followed).
    """

    files: int
    bytes: int

    def __iter__(self) -> Iterator[int]:
        return iter((self.files, self.bytes))


@dataclasses.dataclass(frozen=True)
class SqliteSnapshot:
    """Rows and size of a SQLite database. Unpacks as ``rows, size = ...``.

    Attributes:
        rows: rows of the table asked for, or of every table.
        bytes: size of the database file plus its ``-wal`` file, if any.
    """

    rows: int
    bytes: int

    def __iter__(self) -> Iterator[int]:
        return iter((self.rows, self.bytes))


def dir_snapshot(path: str | os.PathLike[str]) -> DirSnapshot:
    """Count files and bytes under ``path``, recursively.

    Tolerant to a tree that changes during the scan: entries (or whole
    directories) that vanish or cannot be read are skipped. Directory
    symlinks are not followed. A missing path gives zeros; a file path
    gives that one file.
    """
    files = size = 0
    root = os.fspath(path)
    try:
        st = os.lstat(root)
    except OSError:
        return DirSnapshot(0, 0)
    if not os.path.isdir(root) or os.path.islink(root):
        return DirSnapshot(1, st.st_size)
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                            continue
                        entry_size = entry.stat(follow_symlinks=False).st_size
                    except OSError:  # vanished between listing and stat
                        continue
                    files += 1
                    size += entry_size
        except OSError:  # directory vanished or unreadable
            continue
    return DirSnapshot(files, size)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _is_wal_database(path: Path) -> bool:
    """The header says WAL journal mode (file format versions 2, offsets 18-19)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return len(header) == 20 and header.startswith(b"SQLite format 3\x00") and header[18] == 2


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sqlite_snapshot(path: str | os.PathLike[str], table: str | None = None, *, timeout: float = 0.5) -> SqliteSnapshot:
    """Count rows of a SQLite database without keeping it open.

    The database is opened read-only (``file:...?mode=ro`` URI), so the probe
    never creates the file nor takes a write lock, and is closed before
    returning. A WAL-mode database that no connection has open is read with
    ``immutable=1`` too, so the probe leaves no ``-wal``/``-shm`` files behind.

    Args:
        path: the database file.
        table: count this table only; default every table except SQLite's
            internal ``sqlite_*`` ones. A table that does not exist (yet)
            counts 0.
        timeout: seconds to wait for a lock held by a writer.

    Returns:
        Zeros if the file does not exist.

    Raises:
        sqlite3.OperationalError: the file is not a database, or stayed
            locked longer than ``timeout``.
    """
    db = Path(path)
    if not db.is_file():
        return SqliteSnapshot(0, 0)
    wal = db.with_name(db.name + "-wal")
    size = _file_size(db) + _file_size(wal)
    uri = db.resolve().as_uri() + "?mode=ro"
    if not wal.exists() and _is_wal_database(db):
        # No connection has this WAL database open. A read-only connection
        # would create -wal and -shm files it cannot remove afterwards;
        # committed data is all in the main file, so read it as immutable.
        uri += "&immutable=1"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        if table is None:
            names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        else:
            exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
            names = [table] if exists else []
        rows = 0
        for name in names:
            with contextlib.closing(conn.execute(f"SELECT COUNT(*) FROM {_quote_identifier(name)}")) as cursor:
                rows += cursor.fetchone()[0]
    finally:
        conn.close()
    return SqliteSnapshot(rows, size)


def _resources(context: ProbeContext) -> dict[str, Any]:
    return dict(context.target.resources(context.app)) if context.app is not None else {}


class FilesProbe(BaseProbe):
    """``cache_files``/``cache_bytes`` of the target's ``cache_dir``, and
    ``<stem>_files``/``<stem>_bytes`` of any other ``<stem>_dir`` resource it
    declares (a JSON history store...)."""

    name = "files"
    timeline = True

    def sample(self, context: ProbeContext) -> Sample:
        out: Sample = {}
        res = _resources(context)
        if res.get("cache_dir") is not None:
            out["cache_files"], out["cache_bytes"] = dir_snapshot(res["cache_dir"])
        for name, path in res.items():
            if name != "cache_dir" and name.endswith("_dir") and path is not None:
                stem = name[: -len("_dir")]
                out[f"{stem}_files"], out[f"{stem}_bytes"] = dir_snapshot(path)
        return out


class StoreProbe(BaseProbe):
    """``db_rows``/``db_bytes`` of the target's ``history_db`` (after each
    cycle; read-only)."""

    name = "store"
    timeline = False

    def sample(self, context: ProbeContext) -> Sample:
        db = _resources(context).get("history_db")
        if db is None:
            return {}
        rows, size = sqlite_snapshot(db)
        return {"db_rows": rows, "db_bytes": size}
