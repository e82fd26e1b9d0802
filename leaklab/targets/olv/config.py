"""Patching a copy of an Open-LLM-VTuber config so it runs offline: LLM and
TTS at the fake OpenAI-compatible server, dummy keys. The user's file is
read, never written."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..base import AttachError

FAKE_API_KEY = "leaklab-fake-key"
FAKE_TTS = {"model": "fake-tts", "voice": "alloy", "file_extension": "wav"}
_URL_KEYS = ("base_url", "api_base")
_KEY_KEYS = ("api_key", "llm_api_key")



def _set_fake(d: dict[str, Any], base_url: str) -> None:
    for key in _URL_KEYS:
        if key in d:
            d[key] = base_url
    for key in _KEY_KEYS:
        if key in d:
            d[key] = FAKE_API_KEY


def _walk_dicts(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        yield obj
        for value in obj.values():
            yield from _walk_dicts(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _walk_dicts(value)


def _patch_character(character: dict[str, Any], base_url: str, *, complete: bool) -> None:
    from ...fakes.openai import FAKE_MODEL_ID

    # Every endpoint and key under the character goes to the fake first, so
    # no engine left as configured can reach a paid service with a real key.
    for d in _walk_dicts(character):
        _set_fake(d, base_url)
    agent = character.setdefault("agent_config", {}) if complete else character.get("agent_config")
    if isinstance(agent, dict):
        if complete or "conversation_agent_choice" in agent:
            agent["conversation_agent_choice"] = "basic_memory_agent"
        settings = agent.get("agent_settings")
        if complete:
            settings = agent.setdefault("agent_settings", {})
        if isinstance(settings, dict):
            basic = settings.setdefault("basic_memory_agent", {}) if complete else settings.get("basic_memory_agent")
            if isinstance(basic, dict) and (complete or "llm_provider" in basic):
                basic["llm_provider"] = "openai_compatible_llm"
        if complete:
            llms = agent.setdefault("llm_configs", {})
            llm = llms.get("openai_compatible_llm") if isinstance(llms.get("openai_compatible_llm"), dict) else {}
            llms["openai_compatible_llm"] = {
                **llm, "base_url": base_url, "llm_api_key": FAKE_API_KEY, "model": FAKE_MODEL_ID,
                "temperature": llm.get("temperature", 1.0),
            }
    tts = character.setdefault("tts_config", {}) if complete else character.get("tts_config")
    if isinstance(tts, dict):
        if complete or "tts_model" in tts:
            tts["tts_model"] = "openai_tts"
        if complete or isinstance(tts.get("openai_tts"), dict):
            old = tts.get("openai_tts") if isinstance(tts.get("openai_tts"), dict) else {}
            tts["openai_tts"] = {**old, **FAKE_TTS, "api_key": FAKE_API_KEY, "base_url": base_url}


def patch_olv_config(conf: Mapping[str, Any], base_url: str, *, character_only: bool = False) -> dict[str, Any]:
    """A copy of an Open-LLM-VTuber config whose LLM and TTS use ``base_url``.

    The agent becomes ``basic_memory_agent`` on ``openai_compatible_llm``
    (model ``fake-llm``), TTS becomes ``openai_tts``; every ``base_url`` /
    ``api_base`` under ``character_config`` is ``base_url`` and every
    ``api_key`` / ``llm_api_key`` a dummy. ASR and the rest are untouched.

    Args:
        conf: the parsed ``conf.yaml`` (or a character file).
        base_url: the fake's ``http://127.0.0.1:PORT/v1``.
        character_only: for a ``characters/*.yaml`` file, merged over
            ``conf.yaml`` on switch: only what it sets is redirected.
    """
    out = copy.deepcopy(dict(conf))
    character = out.get("character_config")
    if not isinstance(character, dict):
        if character_only:
            return out
        character = out["character_config"] = {}
    _patch_character(character, base_url, complete=not character_only)
    return out


def dump_yaml(data: Any, path: Path) -> None:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def alts_dir(conf: Mapping[str, Any]) -> str:
    system = conf.get("system_config") if isinstance(conf.get("system_config"), dict) else {}
    return str(system.get("config_alts_dir") or "characters")


def read_conf(conf_file: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(conf_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AttachError(f"olv profile: cannot read {conf_file}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("character_config"), dict):
        raise AttachError(f"olv profile: {conf_file} has no character_config mapping")
    return data


def _get(conf: Mapping[str, Any], *path: str) -> Any:
    node: Any = conf
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def describe_changes(original: Mapping[str, Any], patched: Mapping[str, Any]) -> list[str]:
    """What :func:`patch_olv_config` changed, in words (no key or secret
    values: only engine names and endpoints)."""
    notes = []
    agent = ("character_config", "agent_config")
    was = _get(original, *agent, "agent_settings", "basic_memory_agent", "llm_provider")
    now = _get(patched, *agent, "agent_settings", "basic_memory_agent", "llm_provider")
    url = _get(patched, *agent, "llm_configs", now, "base_url") if isinstance(now, str) else None
    was_url = _get(original, *agent, "llm_configs", was, "base_url") if isinstance(was, str) else None
    notes.append(f"LLM: {now} at leaklab's fake OpenAI-compatible server {url} "
                 f"(conf.yaml: {was or 'none'}" + (f" at {was_url}" if was_url else "") + ")")
    tts = ("character_config", "tts_config")
    was_tts, now_tts = _get(original, *tts, "tts_model"), _get(patched, *tts, "tts_model")
    notes.append(f"TTS: {now_tts} at the fake server, real WAV files in cache/ (conf.yaml: {was_tts or 'none'})")
    return notes


def keys_naming(conf: Mapping[str, Any], word: str) -> list[tuple[str, Any]]:
    """``(dotted key, value)`` of the config's string values that mention
    ``word`` (``sherpa_onnx`` finds ``character_config.asr_config.asr_model:
    'sherpa_onnx_asr'``): the key a user changes when ``word`` is missing."""
    want = word.lower().replace("-", "_")
    out: list[tuple[str, Any]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, str) and want and want in node.lower().replace("-", "_"):
            out.append((path, node))

    walk(conf, "")
    # The engine choices (``*_model``, ``*_provider``, ``*_choice``) first:
    # those are what a user switches; paths to files come after.
    out.sort(key=lambda kv: (not kv[0].rsplit(".", 1)[-1].endswith(("_model", "_provider", "_choice")), kv[0]))
    return out


def missing_module_hint(conf: Mapping[str, Any], module: str | None, conf_name: str = "conf.yaml") -> str:
    """One sentence naming the config key to change when ``module`` is not
    installed (empty when no key mentions it)."""
    if not module:
        return ""
    top = module.split(".")[0]
    keys = keys_naming(conf, top)
    if not keys:
        return ""
    key, value = keys[0]
    return (f"{conf_name}: {key} is {value!r}, which needs the module {top!r} (not installed here): "
            f"install it in this environment, or set {key} to an engine that is")
