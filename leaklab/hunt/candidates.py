"""Candidate sessions, as step lists (``leaklab.driver.scenarios.STEP_WORDS``).

One tab's life: ``connect``, optionally the page's ``fetch-configs``, a
``switch`` or two, text turns, and an end at each protocol point — right
after connect, inside the switch's init window (a switch, then the end), at
the first audio frame (``text-until-audio``), after ``backend-synth-complete``
before playback (``text-until-synth``), after ``conversation-chain-end``
(``text``) — as a clean ``close`` or an ``abort`` (no close frame). Plus a
half-open client, a reconnect, two tabs open at once (``tab:2``), and the
proxy path when the target has one.
Shorter and plainer sequences come first, so a leak is first found by the
simplest sequence that shows it; the ones with several clients a cycle last.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..driver.scenario_file import ScenarioFileError, is_scenario_path, read_scenario_file

__all__ = ["candidates", "essential_steps", "trigger_steps"]

#: What a tab does between connecting and leaving, plainest first.
_MIDDLES: tuple[tuple[str, ...], ...] = (
    (),
    ("text",),
    ("switch",),
    ("fetch-configs",),
    ("text-until-synth",),
    ("text-until-audio",),
    ("switch", "text"),
    ("text", "text"),
    ("switch", "switch"),
    ("switch", "text-until-synth"),
    ("switch", "text-until-audio"),
    ("fetch-configs", "switch", "text-until-synth"),
)
_ENDS = ("close", "abort")

#: Steps that open or end a tab: every sequence has them; they say nothing
#: about which lifecycle leaks.
_FRAME_STEPS = frozenset({"connect", "close", "abort"})

#: The named scenarios as step lists (the checklist's triggers are named).
NAMED_STEPS: dict[str, tuple[str, ...]] = {
    "open-close": ("connect", "close"),
    "chat": ("connect", "text", "close"),
    "switch": ("connect", "switch", "text", "close"),
    "switch-then-close": ("connect", "switch", "close"),
    "abrupt-chat": ("connect", "text-until-synth", "close"),
    "reconnect-storm": ("connect", "close", "connect", "abort", "connect", "abort", "half-open"),
    "proxy-chat": ("proxy-connect", "text-until-synth", "close"),
}


def candidates(*, proxy: bool = False, characters: int = 2) -> list[str]:
    """The candidate step lists, in the order they are tried.

    Args:
        proxy: the target has a proxy path (adds proxied chats).
        characters: how many characters a ``switch`` can name (with fewer
            than one, no ``switch``).
    """
    out: list[tuple[str, ...]] = []
    for middle in _MIDDLES:
        if characters < 1 and "switch" in middle:
            continue
        for end in _ENDS:
            out.append(("connect", *middle, end))
    if proxy:
        out.append(("proxy-connect", "text-until-synth", "close"))
        out.append(("proxy-connect", "text", "close"))
    out.sort(key=len)  # stable: plainest first within a length
    # Last: more than one client a cycle. A half-open client holds its session
    # until the server's ping drops it, so what it pins is first claimed by a
    # one-tab sequence that pins it for good.
    out.append(("connect", "close", "connect", "abort"))
    # Two sessions at once: the second tab chats while the first stays open.
    out.append(("connect", "tab:2", "connect", "text", "close", "tab:1", "close"))
    out.append(("connect", "tab:2", "connect", "text-until-synth", "abort", "tab:1", "abort"))
    out.append(("half-open",))
    return [",".join(seq) for seq in out]


def essential_steps(sequence: str | Iterable[str]) -> frozenset[str]:
    """The steps of a sequence that say which lifecycle it exercises (all but
    ``connect``/``close``/``abort``; for a scenario file, those of its steps)."""
    words = sequence.split(",") if isinstance(sequence, str) else list(sequence)
    if isinstance(sequence, str) and "," not in sequence and is_scenario_path(sequence):
        try:  # a recorded scenario file: its steps
            words = read_scenario_file(sequence).words()
        except ScenarioFileError:
            pass
    return frozenset(w.partition(":")[0] for w in words if w and w.partition(":")[0] not in _FRAME_STEPS)


def trigger_steps(scenario: str) -> tuple[str, ...] | None:
    """A named scenario (or a step list) as its steps; ``None`` if unknown."""
    if scenario in NAMED_STEPS:
        return NAMED_STEPS[scenario]
    if "," in scenario:
        return tuple(w.strip() for w in scenario.split(",") if w.strip())
    return None
