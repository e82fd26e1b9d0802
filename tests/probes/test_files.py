"""On-disk growth: a folder's files and bytes, a SQLite file's rows, read
without leaving anything behind."""

from __future__ import annotations

import sqlite3
import types

import psutil

from leaklab.probes import FilesProbe, ProbeContext, StoreProbe, dir_snapshot, sqlite_snapshot


def test_dir_snapshot_counts_files_recursively(tmp_path) -> None:
    # GIVEN a tree of three files
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").mkdir()
    (tmp_path / "x.bin").write_bytes(b"1" * 10)
    (tmp_path / "a" / "y.bin").write_bytes(b"2" * 20)
    (tmp_path / "a" / "b" / "z.bin").write_bytes(b"3" * 30)
    # THEN the snapshot counts them and unpacks as a pair
    files, size = dir_snapshot(tmp_path)
    assert (files, size) == (3, 60)
    # THEN a missing path is empty
    assert tuple(dir_snapshot(tmp_path / "missing")) == (0, 0)


def test_sqlite_snapshot_counts_rows_read_only_without_keeping_file_open(tmp_path) -> None:
    db = tmp_path / "history.db"
    # GIVEN no database yet: zeros, and the probe does not create it
    assert tuple(sqlite_snapshot(db)) == (0, 0)
    assert not db.exists()
    # GIVEN a database with two tables
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, content TEXT)")
        conn.execute('CREATE TABLE "odd ""name" (id INTEGER)')
        conn.executemany("INSERT INTO messages (content) VALUES (?)", [("hi",)] * 5)
        conn.execute('INSERT INTO "odd ""name" VALUES (1)')
        conn.commit()
    finally:
        conn.close()
    proc = psutil.Process()
    fds_before = proc.num_fds()
    # WHEN it is measured
    rows, size = sqlite_snapshot(db, "messages")
    total = sqlite_snapshot(db)
    # THEN rows are counted, per table or in all tables, and the size is the file's
    assert rows == 5 and size == db.stat().st_size
    assert total.rows == 6
    assert sqlite_snapshot(db, "not_yet").rows == 0
    # THEN the connection was closed: no fd left, the file not held open
    assert proc.num_fds() == fds_before
    assert str(db) not in {f.path for f in proc.open_files()}


def test_sqlite_snapshot_leaves_no_wal_files_behind(tmp_path) -> None:
    # GIVEN a WAL-mode database no connection has open
    db = tmp_path / "wal.db"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
        # WHEN it is measured while the writer is open
        assert sqlite_snapshot(db).rows == 1
    finally:
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wal.db"]
    # WHEN it is measured after the writer closed
    assert sqlite_snapshot(db).rows == 1
    # THEN the read-only probe created no -wal/-shm file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wal.db"]


def test_files_and_store_probes_own_the_folder_and_database_columns(tmp_path) -> None:
    # GIVEN a running app whose target declares a cache, a history folder and a database
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "a.wav").write_bytes(b"x" * 10)
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "h.json").write_text("[]")
    db = tmp_path / "h.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    conn.close()
    resources = {"cache_dir": tmp_path / "cache", "history_dir": tmp_path / "history", "history_db": db,
                 "other_dir": None}
    context = ProbeContext(types.SimpleNamespace(resources=lambda app: resources), app=object())
    # WHEN sampled
    files, store = FilesProbe().sample(context), StoreProbe().sample(context)
    # THEN files and bytes of each folder, named after it; rows of the database, after cycles only
    assert files == {"cache_files": 1, "cache_bytes": 10, "history_files": 1, "history_bytes": 2}
    assert store["db_rows"] == 2 and store["db_bytes"] > 0
    assert FilesProbe.timeline and not StoreProbe.timeline
    # AND no app, no columns
    assert FilesProbe().sample(ProbeContext(context.target)) == {} == StoreProbe().sample(ProbeContext(context.target))
