"""The users' checklist, C1-C9, as data: where, the hypothesis, the
question a verdict answers, the experiment that measures it.

An item names its signals by role (``container:<connections>``), never by
a backend's names; :func:`signal_columns` turns them into the census
columns of one target.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any


class UnknownItemError(ValueError):
    """A checklist id that does not exist."""


@dataclasses.dataclass(frozen=True)
class Item:
    """One candidate cause as an experiment.

    Attributes:
        id: stable id (C1..C9).
        title: the cause in the users' words.
        where: where in the users' code.
        hypothesis: what would be true if the cause is real.
        question: what the verdict answers.
        scenario: the trigger scenario.
        cycles: cycles of the main run (enough to judge
            :data:`~leaklab.checklist.rules.MIN_JUDGED_CYCLES` with a failed
            cycle or two).
        needs: the roles the rule reads.
        signals: the census columns the rule reads, by role
            (``container:<connections>``); shown and plotted.
        control: a second run without the trigger (C8: no switch).
        timeline: how long to sample after the last cycle: ``"short"``
            (1 s), ``"ping"`` (the running server's ping interval + timeout
            + a margin), ``"release"`` (long enough to see a task finish).
        probe: the active step after the cycles (``"close_mcp"``: close every
            live MCP client from another task; ``"grow_store"``: time the
            turns at two sizes of the history store).
        explain: run the retention analysis right after the cycles.
        applies: ``"proxy"``: only where the proxy route is mounted.
    """

    id: str
    title: str
    where: str
    hypothesis: str
    question: str
    scenario: str
    cycles: int
    needs: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()
    control: str | None = None
    timeline: str = "short"
    probe: str | None = None
    explain: bool = False
    applies: str | None = None


ITEMS: tuple[Item, ...] = (
    Item("C1", "Fire-and-forget forward tasks in the proxy queue", "proxy_message_queue.py line 114",
         "each proxied message leaves an untracked task that is retained or lost",
         "does the fire-and-forget forward retain tasks, or lose them?", "proxy-chat", 5,
         signals=("tasks", "task:*"), applies="proxy"),
    Item("C2", "Agent memory grows without bound", "agent/agents/basic_memory_agent.py",
         "conversation memory on a shared agent grows per session and slows the LLM call",
         "does agent memory grow across sessions, and is each session's agent freed?", "chat", 5,
         needs=("shared_memory",), signals=("container:<shared_memory>", "type:<agent_type>", "llm_ms")),
    Item("C3", "MCP client leaves stdio subprocesses behind", "mcpp/mcp_client.py aclose()",
         "after aclose() the MCP server subprocesses keep running",
         "were subprocesses started; when close runs, are they reaped, or does close fail?", "chat", 5,
         needs=("mcp_client_type",), signals=("children", "type:<mcp_client_type>"), probe="close_mcp"),
    Item("C4", "TTS audio files pile up in cache/", "conversations/tts_manager.py lines 162-164",
         "a failed or cancelled turn leaves its audio files", "do files grow with abrupt closes, how fast?",
         "abrupt-chat", 5, needs=("tts_cache",), signals=("cache_files", "cache_bytes")),
    Item("C5", "Chat history store grows and slows things down", "chat_history_manager.py store_message",
         "each turn reads the whole history store, so replies slow as it grows",
         "does reply time depend on the store's size?", "chat", 4, needs=("history",),
         signals=("<history>", "llm_ms", "latency_end_ms"), probe="grow_store"),
    Item("C6", "Shared engines accumulate per-client state", "websocket_handler._init_service_context",
         "an engine shared from default_context_cache keeps state per client_uid",
         "does a shared engine's state grow with sessions?", "open-close", 5, needs=("shared_engines",),
         signals=("container:<shared_engines>*",)),
    Item("C7", "Reconnect storms and half-open connections", "routes.py client-ws endpoint",
         "half-open clients stay in client_connections forever", "are dead connections detected, and when?",
         "reconnect-storm", 4, needs=("connections",), signals=("container:<connections>",), timeline="ping"),
    Item("C8", "Untracked heavy init task on character switch", "service_context.py line 585",
         "closing right after switch-config leaves a ServiceContext held by the init task",
         "retained forever or for a while, by what, how many bytes?", "switch-then-close", 5,
         needs=("session_type",), signals=("type:<session_type>", "task:*"), control="open-close",
         timeline="release", explain=True),
    Item("C9", "close() never runs on disconnect", "websocket_handler.handle_disconnect",
         "handle_disconnect pops the context before looking it up", "is close() ever called?",
         "open-close", 4, needs=("session_close",), signals=("lifecycle:<session_close>", "expected:<session_close>")),
)


def get_items(ids: Iterable[str] | str | None = None) -> list[Item]:
    """Items by id (all by default).

    Raises:
        UnknownItemError: listing valid ids.
    """
    if ids is None or ids == "all":
        return list(ITEMS)
    wanted = [i.strip().upper() for i in (ids.split(",") if isinstance(ids, str) else ids) if i.strip()]
    by_id = {i.id: i for i in ITEMS}
    bad = [i for i in wanted if i not in by_id]
    if bad:
        raise UnknownItemError(f"unknown checklist item {bad[0]!r}; valid: {', '.join(by_id)}")
    return [by_id[i] for i in wanted]


def _history_columns(roles: Mapping[str, Any]) -> list[str]:
    history = roles.get("history")
    if not history:
        return []
    kind, resource = history
    if kind == "sqlite":
        return ["db_rows", "db_bytes"]
    stem = resource[:-4] if resource.endswith("_dir") else resource
    return [f"{stem}_files", f"{stem}_bytes"]


def signal_columns(item: Item, roles: Mapping[str, Any], columns: Iterable[str], limit: int = 6) -> list[str]:
    """The census columns of ``item``'s signals for a target with ``roles``,
    among ``columns`` (the census's), at most ``limit``."""
    import fnmatch

    cols = sorted(set(columns))
    out: list[str] = []
    for signal in item.signals:
        patterns = [signal]
        if signal == "<history>":
            patterns = _history_columns(roles)
        elif "<" in signal:
            head, _, rest = signal.partition("<")
            role, _, tail = rest.partition(">")
            value = roles.get(role)
            values = [value] if isinstance(value, str) else list(value or [])
            patterns = [f"{head}{v}{tail}" for v in values]
        for pattern in patterns:
            out.extend(c for c in cols if fnmatch.fnmatchcase(c, pattern) and c not in out)
    return out[:limit]
