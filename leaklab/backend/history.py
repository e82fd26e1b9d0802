"""Chat history in a real SQLite file, one row per message (``chat_history/``),
one row per history made by ``create-new-history`` (upstream's metadata entry)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    history_uid TEXT NOT NULL,
    conf_uid TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_history ON messages (history_uid, id);
CREATE INDEX IF NOT EXISTS messages_conf ON messages (conf_uid, id);
CREATE TABLE IF NOT EXISTS histories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    history_uid TEXT NOT NULL,
    conf_uid TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS histories_conf ON histories (conf_uid, id);
"""


class ChatHistory:
    """The history store shared by every session.

    Args:
        path: the SQLite file.
        read_whole_table: fault C5: each turn's context read loads every row of
            the table instead of the last ``limit`` rows of this history.
    """

    def __init__(self, path: Path, *, read_whole_table: bool = False) -> None:
        self.path = Path(path)
        self.read_whole_table = read_whole_table
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.executescript(_SCHEMA)

    def create_history(self, conf_uid: str) -> str:
        """A new history uid (no row until the first message)."""
        return f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{uuid.uuid4().hex[:8]}"

    def new_history(self, conf_uid: str) -> str:
        """A new history, stored at once (a ``histories`` row, as upstream
        writes a file holding only a metadata entry): what
        ``create-new-history`` makes. Returns its uid."""
        uid = self.create_history(conf_uid)
        self._db.execute("INSERT INTO histories (history_uid, conf_uid, ts) VALUES (?, ?, ?)",
                         (uid, conf_uid, time.time()))
        return uid

    def messages(self, history_uid: str) -> list[dict[str, str]]:
        """The messages of one history, oldest first."""
        rows = self._db.execute("SELECT role, content FROM messages WHERE history_uid = ? ORDER BY id",
                                (history_uid,)).fetchall()
        return [{"role": r, "content": c} for r, c in rows]

    def store_message(self, conf_uid: str, history_uid: str, role: str, content: str) -> None:
        """Append one message."""
        self._db.execute(
            "INSERT INTO messages (history_uid, conf_uid, role, content, ts) VALUES (?, ?, ?, ?, ?)",
            (history_uid, conf_uid, role, content, time.time()),
        )

    def recall(self, conf_uid: str, limit: int) -> list[dict[str, str]]:
        """The long-term context a turn reads: recent messages of this character.

        With C5 the query has neither WHERE nor LIMIT: every row of every
        session is read and returned, so the read and the prompt built from it
        grow with the table.
        """
        if self.read_whole_table:
            rows = self._db.execute("SELECT role, content FROM messages ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                "SELECT role, content FROM messages WHERE conf_uid = ? ORDER BY id DESC LIMIT ?",
                (conf_uid, limit),
            ).fetchall()[::-1]
        return [{"role": r, "content": c} for r, c in rows]

    def list_histories(self, conf_uid: str) -> list[dict[str, object]]:
        """Every stored history of a character (made by :meth:`new_history`
        or holding a message), newest first."""
        rows = self._db.execute(
            "SELECT history_uid, MAX(ts), SUM(n) FROM ("
            " SELECT history_uid, ts, 1 AS n FROM messages WHERE conf_uid = ?"
            " UNION ALL SELECT history_uid, ts, 0 AS n FROM histories WHERE conf_uid = ?"
            ") GROUP BY history_uid ORDER BY MAX(ts) DESC",
            (conf_uid, conf_uid),
        ).fetchall()
        return [{"uid": u, "timestamp": ts, "messages": n} for u, ts, n in rows]

    def delete_history(self, history_uid: str) -> int:
        """Remove a history; returns the number of rows removed."""
        removed = self._db.execute("DELETE FROM messages WHERE history_uid = ?", (history_uid,)).rowcount
        return removed + self._db.execute("DELETE FROM histories WHERE history_uid = ?", (history_uid,)).rowcount

    def row_count(self) -> int:
        """Rows in the table."""
        return self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None  # type: ignore[assignment]
