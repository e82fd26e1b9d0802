"""Engines an olv app cannot build offline, and the MCP servers it will start.

A config copied from upstream's ``conf.default.yaml`` chooses engines that
need a local model or a package most environments lack (``sherpa_onnx_asr``),
and MCP servers started through ``uvx``. The LLM and TTS are pointed at the
fake by :mod:`.config`. For the rest:

* :class:`EngineStandIns` wraps the app's engine factories during a session:
  when the configured engine cannot be built (a module or model missing), a
  leaklab stand-in is used instead (text scenarios never call ASR), and a
  note says which and why. Nothing is swapped when the engine builds.
* :func:`mcp_notes` reads the app's ``mcp_servers.json`` and says which
  enabled servers the app will start and which it will skip (command not on
  ``PATH``), so "MCP is effectively off" is said, not discovered later.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import keys_naming

logger = logging.getLogger("leaklab.targets.olv")

#: (module under the app's package, class, static method, config section,
#: choice key, what it is): the factories a stand-in may replace a product of.
FACTORIES = (
    ("asr.asr_factory", "ASRFactory", "get_asr_system", "asr_config", "asr_model", "ASR"),
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class EngineStandIns:
    """Wraps the app's engine factories; restores them at :meth:`uninstall`.

    Args:
        package: the app's package (``open_llm_vtuber``).
        conf: the patched config (for the key a note names).
        notes: where notes are appended (shared with the attachment).
    """

    def __init__(self, package: str, conf: Mapping[str, Any], notes: list[str]) -> None:
        self.package = package
        self.conf = conf
        self.notes = notes
        self._patches: list[tuple[type, str, Any]] = []

    def install(self) -> None:
        for module_name, cls_name, method, section, choice, what in FACTORIES:
            module = sys.modules.get(f"{self.package}.{module_name}")
            cls = getattr(module, cls_name, None) if module is not None else None
            raw = cls.__dict__.get(method) if isinstance(cls, type) else None
            if not isinstance(raw, (staticmethod, classmethod)) and not callable(raw):
                continue
            self._patches.append((cls, method, raw))
            setattr(cls, method, staticmethod(self._wrap(raw, section, choice, what)))

    def _wrap(self, raw: Any, section: str, choice: str, what: str) -> Any:
        original = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
        bound_cls = isinstance(raw, classmethod)
        owner = self

        def factory(*args: Any, **kwargs: Any) -> Any:
            try:
                return original(*args, **kwargs) if not bound_cls else original(type(owner), *args, **kwargs)
            except Exception as exc:  # a missing module or model: anything the engine raises
                name = str(args[0]) if args else str(kwargs.get("system_name", "?"))
                owner._note(what, section, choice, name, exc)
                from ...fakes.asr import FakeASR

                return FakeASR(replaces=name)

        factory.__wrapped__ = original  # type: ignore[attr-defined]
        return factory

    def _note(self, what: str, section: str, choice: str, name: str, exc: BaseException) -> None:
        key = f"character_config.{section}.{choice}"
        missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
        why = f"needs the module {missing!r}, not installed here" if missing else _first_line(exc)
        if not missing:
            hits = keys_naming(self.conf, name)
            key = hits[0][0] if hits else key
        note = (f"{what}: {name} could not be built ({why}); replaced by leaklab's stand-in "
                f"(text scenarios do not use {what}). To measure your own, make it build here or set {key}")
        if note not in self.notes:
            self.notes.append(note)
            logger.warning("olv profile: %s", note)

    def uninstall(self) -> None:
        while self._patches:
            cls, method, raw = self._patches.pop()
            setattr(cls, method, raw)


def _enabled_servers(conf: Mapping[str, Any]) -> list[str] | None:
    agent = (conf.get("character_config") or {}).get("agent_config") or {}
    basic = (agent.get("agent_settings") or {}).get("basic_memory_agent") or {}
    if not isinstance(basic, Mapping) or not basic.get("use_mcpp"):
        return None
    servers = basic.get("mcp_enabled_servers") or []
    return [str(s) for s in servers] if isinstance(servers, list) else []


def mcp_notes(app_dir: Path, conf: Mapping[str, Any]) -> list[str]:
    """Which MCP servers the app will start per session, and which it skips."""
    enabled = _enabled_servers(conf)
    if enabled is None:
        return ["MCP: off in conf.yaml (use_mcpp is false): no MCP client or stdio server per session"]
    if not enabled:
        return ["MCP: use_mcpp is on but mcp_enabled_servers is empty: no stdio server per session"]
    registry_file = app_dir / "mcp_servers.json"
    try:
        registry = json.loads(registry_file.read_text(encoding="utf-8")).get("mcp_servers") or {}
    except (OSError, ValueError, AttributeError):
        return [f"MCP: servers {', '.join(enabled)} enabled, but {registry_file.name} could not be read: "
                "the app may start none"]
    started, skipped = [], []
    for name in enabled:
        entry = registry.get(name) if isinstance(registry, Mapping) else None
        command = entry.get("command") if isinstance(entry, Mapping) else None
        if not command:
            skipped.append(f"{name} (not in {registry_file.name})")
        elif shutil.which(str(command)) is None and str(command) != "python":
            skipped.append(f"{name} ('{command}' not on PATH)")
        else:
            started.append(f"{name} ({command})")
    notes = []
    if started:
        notes.append(f"MCP: the app starts {', '.join(started)} as stdio subprocesses")
    if skipped:
        off = " - MCP is effectively off for this run: no stdio child to measure" if not started else ""
        notes.append(f"MCP: the app skips {', '.join(skipped)}{off}")
    return notes
