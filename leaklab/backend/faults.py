"""The checklist causes C1–C9 as switchable faults, and the backend options.

A fault that is off means the correct implementation runs. Each fault models
the mechanism the users' code has, not a planted list of objects: see the
module named in :data:`FAULTS` for where it lives.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

# id -> (one-line description, where it lives in the reference backend)
FAULTS: dict[str, tuple[str, str]] = {
    "C1": ("proxy forward as an untracked fire-and-forget task", "proxy.ProxyMessageQueue"),
    "C2": ("agent memory unbounded and shared across sessions", "agent.BasicMemoryAgent"),
    "C3": ("MCP client close leaves sessions and stdio subprocesses running", "mcp_client.MCPClient"),
    "C4": ("TTS file left in cache when synthesis fails or is cancelled", "conversation.TTSTaskManager"),
    "C5": ("each turn reads the whole history table", "history.ChatHistory"),
    "C6": ("shared engine keeps per-client state keyed by client_uid", "engines.FakeASR"),
    "C7": ("no dead-connection detection for half-open clients", "server.create_app"),
    "C8": ("switch-config heavy init as an untracked task holding self", "service_context.ServiceContext"),
    "C8-proposed": (
        "C8 with exactly the fix proposed in CHECKLIST.md (tasks kept and cancelled in close())",
        "service_context.ServiceContext",
    ),
    "C9": ("handle_disconnect pops the context before looking it up: close() never runs",
           "websocket_handler.WebSocketHandler"),
}

#: What ``all`` means: every cause, each in its faulty form.
ALL_FAULTS: tuple[str, ...] = ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9")


class UnknownFaultError(ValueError):
    """A fault id that the reference backend does not know."""


class UnknownOptionError(ValueError):
    """A backend option that does not exist, or a value of the wrong type."""


def parse_faults(faults: str | Iterable[str] | None) -> frozenset[str]:
    """Turn ``"C8,C9"``, ``"all"``, ``"none"`` or an iterable of ids into a set.

    Args:
        faults: comma-separated ids, ``all``, ``none``, ``""``, ``None`` or ids.

    Returns:
        The fault ids, validated.

    Raises:
        UnknownFaultError: naming the bad id and listing the valid ones.
    """
    if faults is None:
        return frozenset()
    if isinstance(faults, str):
        items = [f.strip() for f in faults.split(",") if f.strip()]
    else:
        items = [str(f).strip() for f in faults]
    out: set[str] = set()
    for item in items:
        low = item.lower()
        if low == "none":
            continue
        if low == "all":
            out.update(ALL_FAULTS)
            continue
        canon = item.upper().replace("C8-PROPOSED", "C8-proposed")
        if canon not in FAULTS:
            valid = ", ".join([*FAULTS, "all", "none"])
            raise UnknownFaultError(f"unknown fault {item!r}; valid: {valid}")
        out.add(canon)
    if {"C8", "C8-proposed"} <= out:
        raise UnknownFaultError("C8 and C8-proposed are two forms of one cause; pick one")
    return frozenset(out)


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """Knobs of the reference backend that are not faults.

    Attributes:
        heavy_init_s: duration of the background init after ``switch-config``
            (``inf``: it never finishes).
        heavy_init_mb: memory the finished init holds (the warmed agent state).
        conf_dir: folder with ``conf.yaml`` and ``characters/``.
        cache_dir: TTS cache folder; ``None``: a temp dir owned by the app.
        history_db: SQLite file; ``None``: ``chat_history.sqlite3`` in a temp dir.
        llm_base_url: OpenAI-compatible base URL; ``None``: start the shipped fake.
        llm_latency_per_kchar_s: the shipped fake's extra latency per 1000 prompt chars.
        memory_limit: messages the agent keeps (when C2 is off).
        history_limit: history rows read per turn (when C5 is off).
        asr_state_kb: per-client stream buffer the ASR engine keeps.
        ping_interval_s: WebSocket ping interval (when C7 is off).
        ping_timeout_s: WebSocket pong timeout (when C7 is off).
        enable_proxy: mount ``/proxy-ws``; ``None`` reads ``conf.yaml``.
        slow_ms_per_session: synchronous work each new connection does on the
            event loop, this many ms more for every session before it (a
            scan of what earlier sessions left): the test bed of the
            ``slows`` verdict; 0 (the default): none.
        slow_work: what that work is: ``"cpu"`` (pure Python, holding the
            GIL, as parsing JSON) or ``"io"`` (a blocking wait that releases
            it, as a synchronous file or socket read).
    """

    heavy_init_s: float = 2.0
    heavy_init_mb: float = 2.0
    conf_dir: Path | None = None
    cache_dir: Path | None = None
    history_db: Path | None = None
    llm_base_url: str | None = None
    llm_latency_per_kchar_s: float = 0.02
    memory_limit: int = 20
    history_limit: int = 20
    asr_state_kb: int = 64
    ping_interval_s: float = 1.0
    ping_timeout_s: float = 1.0
    enable_proxy: bool | None = None
    slow_ms_per_session: float = 0.0
    slow_work: str = "cpu"

    def __post_init__(self) -> None:
        if self.slow_work not in ("cpu", "io"):
            raise UnknownOptionError(f"option slow_work: expected 'cpu' or 'io', got {self.slow_work!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object] | None) -> BackendOptions:
        """Build options from ``{"heavy_init_s": "inf", ...}`` (strings are coerced).

        Raises:
            UnknownOptionError: for an unknown key or a value that does not parse.
        """
        if not values:
            return cls()
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, object] = {}
        for key, raw in values.items():
            if key not in fields:
                raise UnknownOptionError(f"unknown backend option {key!r}; valid: {', '.join(fields)}")
            kwargs[key] = _coerce(key, str(fields[key].type), raw)
        return cls(**kwargs)

    def as_dict(self) -> dict[str, object]:
        """Options as JSON-friendly values (paths as strings, inf as ``"inf"``)."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Path):
                v = str(v)
            elif isinstance(v, float) and math.isinf(v):
                v = "inf"
            out[f.name] = v
        return out


def _coerce(key: str, type_name: str, raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    try:
        if "bool" in type_name:
            if text.lower() in ("none", "null", ""):
                return None
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if "float" in type_name:
            return float(text)
        if "int" in type_name:
            return int(text)
        if "Path" in type_name:
            return None if text.lower() in ("none", "") else Path(text)
        if "str" in type_name:
            return None if text.lower() == "none" else text
    except ValueError:
        raise UnknownOptionError(f"option {key}: cannot read {raw!r} as {type_name}") from None
    return text


def parse_option_pairs(pairs: Iterable[str] | None) -> dict[str, str]:
    """Parse CLI ``KEY=VALUE`` strings into a dict.

    Raises:
        UnknownOptionError: for an item without ``=``.
    """
    out: dict[str, str] = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise UnknownOptionError(f"option {pair!r} is not KEY=VALUE")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out
