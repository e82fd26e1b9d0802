"""Which planted faults are on: ``OLV_APP_FAULTS``, read at every call.

Test-app convenience: upstream has no such switch. This app plants each
checklist cause (C1-C9 of leaklab's CHECKLIST.md) the way upstream's code
could have it, and this module says which of them run; a fault that is off
runs the correct code. The variable holds a comma list of ids (``C2,C9``),
``none`` (or an empty string) or ``all``; unset, it means ``C8`` alone (the
leak this app has always had).

Where each one lives:

* C1 ``proxy_message_queue.ProxyMessageQueue._consume_loop``: the forward is
  an untracked fire-and-forget task that waits for its turn's end.
* C2 ``BasicMemoryAgent.set_memory_from_history`` / ``chat``: the shared
  agent's memory is not reset for a new session and has no limit.
* C3 ``mcpp.mcp_client.MCPClient``: servers entered in the task that first
  uses them, closed from the disconnect task; the close fails, the
  subprocess stays.
* C4 ``conversations.single_conversation._turn``: audio files removed only
  once the whole turn has played.
* C5 ``BasicMemoryAgent.chat``: every turn recalls every stored message of
  the character.
* C6 ``asr.asr_interface.ASRInterface.client_buffers``: not cleaned on
  disconnect.
* C7 ``WebSocketHandler.handle_disconnect``: only a clean close forgets the
  connection.
* C8 ``ServiceContext.handle_config_switch``: the untracked warm-up task.
* C9 ``WebSocketHandler.handle_disconnect``: the context is popped before it
  is looked up, so ``close()`` never runs.
"""

from __future__ import annotations

import os

ENV_VAR = "OLV_APP_FAULTS"
ALL_FAULTS = ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9")
#: What an unset variable means.
DEFAULT_FAULTS = "C8"


def active_faults() -> frozenset[str]:
    """The faults on now.

    Raises:
        ValueError: an id that is not C1-C9, ``all`` or ``none``.
    """
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        raw = DEFAULT_FAULTS
    out: set[str] = set()
    for item in (part.strip() for part in raw.split(",")):
        if not item or item.lower() == "none":
            continue
        if item.lower() == "all":
            out.update(ALL_FAULTS)
        elif item.upper() in ALL_FAULTS:
            out.add(item.upper())
        else:
            raise ValueError(f"{ENV_VAR}: unknown fault {item!r}; valid: {', '.join(ALL_FAULTS)}, all, none")
    return frozenset(out)


def fault_on(fault_id: str) -> bool:
    """Whether planted fault ``fault_id`` (``"C3"``) is on."""
    return fault_id.upper() in active_faults()


#: A fork's own background init on every switch (the users' C8 as their fork
#: has it): seconds it holds the context, ``0``/unset: no such task.
HEAVY_INIT_VAR = "OLV_APP_HEAVY_INIT_S"


def heavy_init_s() -> float:
    """How long the switch's untracked background init runs (0: not started)."""
    try:
        return max(0.0, float(os.environ.get(HEAVY_INIT_VAR) or 0))
    except ValueError:
        raise ValueError(f"{HEAVY_INIT_VAR}: seconds, not {os.environ.get(HEAVY_INIT_VAR)!r}") from None
