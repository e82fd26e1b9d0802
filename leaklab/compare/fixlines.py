"""Did your fix run? The change's hunks, which of them ran while each unit
ran, and what that says next to the verdict.

* :func:`find_change`: the hunks between the two sides' app folders
  (:mod:`.hunks`);
* :func:`trace_plan`: what a side's child traces (:mod:`.linetrace`): the
  added lines on the after side, the removed ones on the before side, and the
  functions enclosing them;
* :func:`unit_coverage`: one unit's hunks, each ``ran N×`` or ``never ran``
  (and why, from the trace and the run's own lifecycle accounting);
* :func:`coverage_answer`: the sentence put first in a row's detail when
  the verdict alone would leave the user guessing.

Pure functions of plain data: the records the children printed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import metrics
from ..metrics import ItemVerdict, Kind
from .hunks import Hunk, function_spans, hunks_between

__all__ = ["FixChange", "coverage_answer", "find_change", "hunk_line", "trace_plan", "unit_coverage"]

#: Hunk states.
RAN, NEVER_RAN, NOT_IMPORTED, NOT_CODE = "ran", "never ran", "not imported during the run", "no executable line"
NOT_TRACED = "not traced"


@dataclasses.dataclass
class FixChange:
    """The change between the sides' app folders.

    Attributes:
        before_root, after_root: the folders (or files) compared.
        hunks: every hunk of every changed Python file.
    """

    before_root: Path | None
    after_root: Path | None
    hunks: list[Hunk] = dataclasses.field(default_factory=list)

    @property
    def files(self) -> list[str]:
        return sorted({h.file for h in self.hunks})

    def as_dict(self) -> dict[str, Any]:
        return {"before_root": str(self.before_root) if self.before_root else None,
                "after_root": str(self.after_root) if self.after_root else None,
                "files": self.files, "hunks": [h.as_dict() for h in self.hunks]}


def find_change(before_root: Path | None, after_root: Path | None) -> FixChange:
    """The hunks between two app folders (``None``: unknown, no hunk)."""
    if before_root is None or after_root is None:
        return FixChange(before_root, after_root)
    return FixChange(before_root, after_root, hunks_between(before_root, after_root))


def trace_plan(change: FixChange, side: str) -> dict[str, dict[str, Any]]:
    """A side's tracer plan: file path -> ``{"lines", "functions"}``
    (``side``: ``"after"`` traces the added lines, ``"before"`` the removed
    ones; both count the entries of the functions enclosing any hunk)."""
    root = change.after_root if side == "after" else change.before_root
    if root is None:
        return {}
    plan: dict[str, dict[str, Any]] = {}
    by_file: dict[str, list[Hunk]] = {}
    for h in change.hunks:
        by_file.setdefault(h.file, []).append(h)
    for rel, hunks in by_file.items():
        path = root if root.is_file() else root / rel
        if not path.is_file():
            continue
        try:
            spans = function_spans(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
        starts = {name.replace(".<locals>.", "."): start for start, _, name, start in spans}
        names = {h.function for h in hunks}
        lines = sorted({ln for h in hunks for ln in (h.lines if side == "after" else h.removed_lines)})
        plan[str(path.resolve())] = {"rel": rel, "lines": lines,
                                     "functions": {str(starts[n]): n for n in names if n in starts}}
    return plan


def _trace_file(trace: Mapping[str, Any] | None, plan: Mapping[str, Mapping[str, Any]], rel: str
                ) -> Mapping[str, Any] | None:
    if not trace:
        return None
    files = trace.get("files") or {}
    for path, p in plan.items():
        if p.get("rel") == rel:
            return files.get(path)
    return None


def _lifecycle(summaries: Iterable[Mapping[str, Any]], function: str) -> str | None:
    """What the run's lifecycle accounting measured about ``function``."""
    for s in summaries:
        v = (s.get("lifecycle") or {}).get(function)
        if not v:
            continue
        objects = v.get("objects") or {}
        label = metrics.name(Kind.LIFECYCLE, function)
        if objects.get("of"):
            return f"{label} ran for {objects.get('ran_for', 0)} of {objects['of']}"
        if v.get("expected"):
            return f"{label}: {v.get('calls') or 0} calls of {v['expected']} expected"
    return None


def _items_about(function: str, roles: Mapping[str, Any]) -> list[str]:
    """Checklist items whose signals read ``function``'s lifecycle (C9 for a
    session's ``close``)."""
    from ..checklist import get_items

    out = []
    for item in get_items():
        for signal in item.signals:
            parsed = metrics.parse(signal)
            if parsed.kind is Kind.LIFECYCLE and roles.get(parsed.subject.strip("<>")) == function:
                out.append(item.id)
                break
    return out


def _ran(h: Hunk, lines: Mapping[str, int]) -> int:
    counts = [int(lines.get(str(ln), 0)) for ln in h.lines]
    if not counts:
        return 0
    return counts[0] or max(counts)


def unit_coverage(
    change: FixChange,
    after: Mapping[str, Any] | None,
    before: Mapping[str, Any] | None = None,
    *,
    plans: Mapping[str, Mapping[str, Mapping[str, Any]]],
    summaries: Sequence[Mapping[str, Any]] = (),
    roles: Mapping[str, Any] | None = None,
    cycles: int | None = None,
) -> dict[str, Any]:
    """One unit's hunks, each with what ran.

    Args:
        change: the hunks.
        after, before: each side's ``fix_trace`` (the worker's record).
        plans: ``{"after": plan, "before": plan}`` the traces were made with.
        summaries: the after side's run summaries (their ``lifecycle``).
        roles: the after side's roles (to name the item about a function).
        cycles: the unit's cycles.

    Returns:
        ``{"hunks": [...], "ran": n, "never_ran": n, "traced": bool, "line": "your change: ..."}``;
        each hunk: id, file, function, status (``ran`` / ``never ran`` / ``not imported during the
        run`` / ``no executable line``), ``ran`` (times its first line ran), ``lines``,
        ``entered`` (calls of its function), ``removed_ran`` (its removed lines' runs on the
        before side), ``why`` (for one that never ran), ``items`` (checklist items about its function).
    """
    rows = []
    for h in change.hunks:
        t = _trace_file(after, plans.get("after") or {}, h.file)
        tb = _trace_file(before, plans.get("before") or {}, h.file)
        lines = dict((t or {}).get("lines") or {})
        entered = ((t or {}).get("functions") or {}).get(h.function)
        removed_ran = max([int(((tb or {}).get("lines") or {}).get(str(ln), 0)) for ln in h.removed_lines] or [0])
        row: dict[str, Any] = {"id": h.id, "file": h.file, "function": h.function, "text": h.text,
                               "lines": {str(ln): int(lines.get(str(ln), 0)) for ln in h.lines},
                               "entered": int(entered or 0), "removed_ran": removed_ran if tb is not None else None,
                               "why": "", "items": []}
        if not h.lines:
            row["status"], row["ran"] = (NOT_CODE, 0)
            if h.removed_lines:
                row["status"] = RAN if removed_ran else NEVER_RAN  # a pure removal: what it used to do
        elif not after:  # the child gave no trace (it failed, or tracing was off)
            row["status"], row["ran"] = NOT_TRACED, 0
        elif t is None or not t.get("imported"):
            row["status"], row["ran"] = NOT_IMPORTED, 0
        else:
            n = _ran(h, lines)
            row["status"], row["ran"] = (RAN if n else NEVER_RAN), n
        if row["status"] == NEVER_RAN and h.lines:
            short = h.function.rpartition(".")[2]
            if h.function == "<module>":
                why = "the module's top level did not run this"
            elif row["entered"]:
                why = f"`{short}()` was called {row['entered']} times, but never reached these lines"
            else:
                why = f"`{short}()` was called 0 times"
            measured = _lifecycle(summaries, h.function)
            items = _items_about(h.function, roles or {}) if h.function != "<module>" else []
            row["why"] = why + (f"; {measured}" if measured else "") + (
                f" — that is {', '.join(items)}" if items else "")
            row["items"] = items
        rows.append(row)
    code = [r for r in rows if r["status"] != NOT_CODE]
    out = {"hunks": rows, "ran": sum(r["status"] == RAN for r in rows),
           "never_ran": sum(r["status"] == NEVER_RAN for r in rows),
           "not_imported": sum(r["status"] == NOT_IMPORTED for r in rows),
           "traced": after is not None, "cycles": cycles, "mechanism": (after or {}).get("mechanism")}
    parts = [f"`{r['function']}` ({hunk_status(r, cycles)})" for r in code] or ["no executable line changed"]
    out["line"] = f"your change: {len(rows)} hunk{'s' if len(rows) != 1 else ''} — " + ", ".join(parts)
    return out


def hunk_status(row: Mapping[str, Any], cycles: int | None = None) -> str:
    """``ran 5×, every cycle`` / ``**never ran**: close() was called 0 times`` / ``not imported during the run``."""
    if not row.get("lines") and row["status"] in (RAN, NEVER_RAN):  # a pure removal: what it used to do
        return f"removed; it ran {row['removed_ran']}× before" if row.get("removed_ran") else "removed; it never ran before"
    if row["status"] == RAN:
        n = row["ran"]
        every = ", every cycle" if cycles and n >= cycles else (f" in {cycles} cycles" if cycles else "")
        removed = f"; the code it replaced ran {row['removed_ran']}× before" if row.get("removed_ran") else ""
        return f"ran {n}×{every}{removed}"
    if row["status"] == NEVER_RAN:
        return "**never ran**" + (f": {row['why']}" if row.get("why") else "")
    return str(row["status"])


def hunk_line(row: Mapping[str, Any], cycles: int | None = None) -> str:
    """One hunk as one line: ``service_context.py:140 ServiceContext.close: never ran — why``."""
    status = hunk_status(row, cycles).replace("**", "").replace("never ran: ", "never ran — ", 1)
    return f"{row['id']} {row['function']}: {status}"


_LEAKING = frozenset({ItemVerdict.CONFIRMED, ItemVerdict.TRANSIENT})


def coverage_answer(change: str, coverage: Mapping[str, Any] | None, *, before_leaked: bool = False) -> str:
    """What to say first in a row's detail, given its change and its unit's
    coverage (empty: the verdict speaks for itself).

    * unchanged / still leaks / partly fixed / worse with a hunk that never
      ran: that hunk, why, and what the kit measured about its function;
    * unchanged / still leaks with every hunk run: the fix runs and does not help;
    * fixed, the before side measured leaking on the same unit: the leak
      comes back without the change.
    """
    if not coverage or not coverage.get("traced"):
        return ""
    hunks = coverage.get("hunks") or []
    never = [h for h in hunks if h["status"] == NEVER_RAN and h.get("lines")]
    code = [h for h in hunks if h["status"] in (RAN, NEVER_RAN) and h.get("lines")]
    if change in (metrics.Change.UNCHANGED, metrics.Change.STILL_LEAKS, metrics.Change.PARTLY_FIXED,
                  metrics.Change.WORSE, metrics.Change.CANT_TELL):
        if never:
            first = never[0]
            others = f" (and {len(never) - 1} more hunk{'s' if len(never) > 2 else ''} never ran)" if len(never) > 1 else ""
            return (f"{change}, and your change in `{first['function']}` never ran: {first['why']}{others}")
        if code and change in (metrics.Change.UNCHANGED, metrics.Change.STILL_LEAKS):
            return f"{change}: every hunk of your change ran ({len(code)}): the fix runs and does not help"
    if change == metrics.Change.FIXED and before_leaked and code and not never:
        return "fixed, and the leak comes back without your change (the before side leaked on the same unit)"
    if change == metrics.Change.FIXED and before_leaked:
        return "fixed; the before side leaked on the same unit"
    return ""
