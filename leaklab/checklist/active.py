"""Experiments that do more than watch: steps run on the live backend after
an item's cycles, each writing what it measured into the record's facts.

* :func:`close_mcp_clients` calls the MCP client's close method on every
  live client, from this task (as a disconnect handler in another task
  would), and records per client what happened: closed, or raised what;
  then the child processes left. It separates "close leaves subprocesses"
  (C3) from "close is never reached" (C9).
* :func:`grow_store` times the turns at two sizes of the history store,
  grown from its own contents (SQLite rows, or the entries of a folder of
  JSON files): a bounded read costs the same at both, a whole-store read
  more at the larger.

They read roles (the MCP client type, the history store), never a
backend's names.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Seconds one close may take before it counts as hung.
CLOSE_TIMEOUT_S = 10.0


def _children() -> int:
    from ..probes import process_snapshot

    return process_snapshot(count_gc_objects=False).children


async def close_mcp_clients(session: Any, roles: Mapping[str, Any], facts: dict[str, Any]) -> None:
    """Close every live MCP client from this task; record each outcome."""
    type_name = roles.get("mcp_client_type")
    close_label = roles.get("mcp_close") or ""
    method = close_label.rpartition(".")[2] or "aclose"
    if not type_name:
        return
    clients = session.instances(type_name)
    outcomes: list[dict[str, Any]] = []
    facts["clients_alive"] = len(clients)
    try:
        for client in clients:
            close = getattr(client, method, None)
            outcome: dict[str, Any] = {"client": f"{type(client).__name__} at 0x{id(client):x}", "raised": None}
            if close is None:
                outcome["raised"] = f"AttributeError: no method {method!r}"
            else:
                try:
                    result = close()
                    if asyncio.iscoroutine(result):
                        await asyncio.wait_for(result, CLOSE_TIMEOUT_S)
                except asyncio.TimeoutError:
                    outcome["raised"] = f"did not finish within {CLOSE_TIMEOUT_S:.0f} s"
                except Exception as exc:  # the answer to C3 may be exactly this error
                    outcome["raised"] = f"{type(exc).__name__}: {exc}"
            outcomes.append(outcome)
    finally:
        del clients
    await asyncio.sleep(1.0)  # let the children exit and be reaped
    facts["close_outcomes"] = outcomes
    facts["children_after_close"] = _children()


# -- the history store ----------------------------------------------------------


def _sqlite_tables(con: sqlite3.Connection) -> list[str]:
    return [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]


def sqlite_rows(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
        return sum(con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in _sqlite_tables(con))


def grow_sqlite(db: Path, *, min_rows: int) -> int:
    """Double every table by copying its rows (primary keys left to SQLite)
    until it has ``min_rows``; returns the rows after."""
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
        for table in _sqlite_tables(con):
            cols = [c[1] for c in con.execute(f'PRAGMA table_info("{table}")') if not c[5]]
            if not cols:
                continue
            names = ", ".join(f'"{c}"' for c in cols)
            for _ in range(20):
                n = con.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
                if n == 0 or n >= min_rows:
                    break
                con.execute(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM "{table}"')
            con.commit()
    return sqlite_rows(db)


def sqlite_marks(db: Path) -> dict[str, int]:
    """Per table, the highest rowid now (what :func:`shrink_sqlite` goes back to)."""
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
        out = {}
        for table in _sqlite_tables(con):
            with contextlib.suppress(sqlite3.Error):
                out[table] = con.execute(f'SELECT COALESCE(MAX(rowid), 0) FROM "{table}"').fetchone()[0]
        return out


def shrink_sqlite(db: Path, marks: dict[str, int]) -> int:
    """Delete the rows added since ``marks``; returns the rows after."""
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
        for table, top in marks.items():
            with contextlib.suppress(sqlite3.Error):
                con.execute(f'DELETE FROM "{table}" WHERE rowid > ?', (top,))
        con.commit()
    return sqlite_rows(db)


def json_marks(folder: Path) -> dict[str, int]:
    """Per JSON list file, its entries now (what :func:`shrink_json_dir` goes back to)."""
    out = {}
    for path in _json_files(folder):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, list):
                out[str(path)] = len(data)
    return out


def shrink_json_dir(folder: Path, marks: dict[str, int]) -> int:
    """Cut every JSON list file back to its entries at ``marks``; returns the entries after."""
    for name, n in marks.items():
        path = Path(name)
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, list) and len(data) > n:
                path.write_text(json.dumps(data[:n]), encoding="utf-8")
    return json_entries(folder)


def _json_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.json") if p.is_file())


def json_entries(folder: Path) -> int:
    """Entries of every JSON list file under ``folder``."""
    total = 0
    for path in _json_files(folder):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            total += len(data) if isinstance(data, list) else 0
    return total


def grow_json_dir(folder: Path, *, min_entries: int) -> int:
    """Double every JSON list file's entries (copies of its own) until the
    folder holds ``min_entries``; returns the entries after."""
    for _ in range(20):
        if json_entries(folder) >= min_entries:
            break
        grew = False
        for path in _json_files(folder):
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(data, list) and data:
                    path.write_text(json.dumps(data + data), encoding="utf-8")
                    grew = True
        if not grew:
            break
    return json_entries(folder)


def _median_latency(summary_records: list[dict[str, Any]], metric: str) -> float | None:
    values = [r[metric] for r in summary_records[1:] if r.get(metric) == r.get(metric) and r.get(metric) is not None]
    return statistics.median(values) if values else None


async def grow_store(session: Any, roles: Mapping[str, Any], facts: dict[str, Any], scenario: str, cycles: int,
                     *, options: Any = None) -> dict[str, Any]:
    """Run ``scenario`` at two sizes of the history store, then at the small
    size again (each run with ``options``, default the session's); return
    the runs by name (``small``, ``large``, ``back``); medians and sizes go
    in ``facts``."""
    history = roles.get("history")
    if not history:
        return {}
    kind, resource = history
    res = session.resources()
    where = res.get(resource)
    if where is None or not Path(where).exists():
        facts["store_error"] = f"the {resource} resource ({where}) does not exist after the cycles"
        return {}
    where = Path(where)
    if kind == "sqlite":
        count, grow, unit = sqlite_rows, grow_sqlite, "rows"
        grow_kw = "min_rows"
        mark, shrink = sqlite_marks, shrink_sqlite
    else:
        count, grow, unit = json_entries, grow_json_dir, "entries"
        grow_kw = "min_entries"
        mark, shrink = json_marks, shrink_json_dir
    facts["store"] = f"{kind} {resource}"
    facts["unit"] = unit
    if count(where) == 0:
        facts["store_error"] = f"the {kind} store at {resource} is empty after the cycles: nothing to grow"
        return {}
    runs: dict[str, Any] = {}
    # small, large, then small again (the large growth taken back out): a
    # slow-down the store causes goes away with it; one that comes with
    # time (something else piling up) does not.
    # Where the backend talks to leaklab's fake LLM, what each call's prompt
    # carried is measured too (the store read into the prompt).
    from ..fakes.openai import llm_usage

    async def timed_run(phase: str) -> None:
        chats0, chars0 = llm_usage()
        runs[phase] = await session.run(scenario, cycles, options=options)
        chats1, chars1 = llm_usage()
        facts[f"prompt_{phase}_chars"] = round((chars1 - chars0) / (chats1 - chats0)) if chats1 > chats0 else None

    facts["size_small"] = grow(where, **{grow_kw: 200})
    await timed_run("small")
    marks = mark(where)
    facts["size_large"] = grow(where, **{grow_kw: 800})
    await timed_run("large")
    facts["size_back"] = shrink(where, marks)
    await timed_run("back")
    metric = "llm_ms" if any("llm_ms" in r for r in runs["small"].records) else "latency_end_ms"
    facts["latency_metric"] = "llm" if metric == "llm_ms" else "reply"
    for phase in ("small", "large", "back"):
        facts[f"latency_{phase}_ms"] = _median_latency(runs[phase].records, metric)
    return runs
