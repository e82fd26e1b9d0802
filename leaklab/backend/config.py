"""conf.yaml and characters/*.yaml, read the way Open-LLM-VTuber reads them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ..resources import reference_data_dir

DEFAULT_CONF_DIR = reference_data_dir()  # data/ of a checkout, or the wheel's copy


class ConfigError(ValueError):
    """A configuration file that is missing, unreadable or outside its folder."""


def load_conf(conf_dir: Path | None = None) -> dict[str, Any]:
    """Read ``conf.yaml`` from ``conf_dir`` (default: the reference's, :func:`leaklab.resources.reference_data_dir`)."""
    conf_dir = Path(conf_dir or DEFAULT_CONF_DIR)
    path = conf_dir / "conf.yaml"
    if not path.is_file():
        raise ConfigError(f"no conf.yaml in {conf_dir}")
    with path.open(encoding="utf-8") as fh:
        conf = yaml.safe_load(fh)
    if not isinstance(conf, dict) or "character_config" not in conf:
        raise ConfigError(f"{path} has no character_config")
    return conf


def characters_dir(conf: dict[str, Any], conf_dir: Path | None = None) -> Path:
    """The folder of alternative character configs."""
    conf_dir = Path(conf_dir or DEFAULT_CONF_DIR)
    return (conf_dir / conf.get("system_config", {}).get("config_alts_dir", "characters")).resolve()


def list_configs(conf: dict[str, Any], conf_dir: Path | None = None) -> list[dict[str, str]]:
    """The ``configs`` list of a ``config-files`` frame."""
    out = [{"filename": "conf.yaml", "name": conf["character_config"].get("conf_name", "default")}]
    alts = characters_dir(conf, conf_dir)
    for path in sorted(alts.glob("*.yaml")):
        try:
            with path.open(encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
            name = data.get("character_config", {}).get("conf_name", path.stem)
        except (OSError, yaml.YAMLError):
            continue
        out.append({"filename": path.name, "name": name})
    return out


def load_character(conf: dict[str, Any], filename: str, conf_dir: Path | None = None) -> dict[str, Any]:
    """The full config after switching to ``filename``.

    ``conf.yaml`` gives the default; any other name must be a yaml file inside
    the characters folder. Its ``character_config`` is merged over the
    default one.

    Raises:
        ConfigError: for a path that leaves the characters folder, a missing
            file, or a file that is not a mapping.
    """
    if filename == "conf.yaml":
        return copy.deepcopy(conf)
    alts = characters_dir(conf, conf_dir)
    if not isinstance(filename, str) or not filename or "\x00" in filename:
        raise ConfigError("config file name must be a non-empty string")
    candidate = (alts / filename).resolve()
    if candidate.parent != alts or candidate.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"refusing config path outside {alts.name}/: {filename!r}")
    if not candidate.is_file():
        raise ConfigError(f"no such config file: {filename!r}")
    try:
        with candidate.open(encoding="utf-8") as fh:
            alt = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {filename!r}: {exc}") from None
    if not isinstance(alt, dict):
        raise ConfigError(f"{filename!r} is not a mapping")
    merged = copy.deepcopy(conf)
    merged["character_config"] = _deep_merge(merged["character_config"], alt.get("character_config", {}))
    return merged


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def model_info(character: dict[str, Any]) -> dict[str, Any]:
    """The ``model_info`` of a ``set-model-and-conf`` frame (a Live2D stub)."""
    name = character.get("live2d_model_name", "model")
    return {
        "name": name,
        "url": f"/live2d-models/{name}/{name}.model3.json",
        "kScale": 0.5,
        "emotionMap": {"neutral": 0, "joy": 3},
    }
