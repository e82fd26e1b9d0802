"""Scenario files: what ``leaklab record`` writes and ``--scenario FILE`` reads.

A scenario file is JSON, or YAML when its name ends ``.yaml``/``.yml``::

    format: leaklab-scenario
    version: 1
    target: reference                # the target it was recorded on
    recorded: {page: http://..., mode: scripted, at: 2026-12-06T19:00:00Z}
    steps:                           # the step-list language (scenarios.STEP_WORDS)
      - connect
      - switch
      - send: [{type: fetch-pinned}] # frames the language has no word for,
        replies: [pinned-list]       #   sent as recorded, their replies read
        at: [1.234]                  #   (seconds into the recording)
      - text
      - close
    frames:                          # everything the page's sockets did, in order
      - {t: 0.01, tab: 1, socket: 1, event: open, path: /client-ws}
      - {t: 0.02, tab: 1, socket: 1, event: sent, frame: {type: fetch-backgrounds}}
      - {t: 0.05, tab: 1, socket: 1, event: received, type: group-update}
    uncovered: {fetch-pinned: 1}     # frame types no step word covers, counted

Only ``format`` and ``steps`` are required. This module reads and checks the
file's shape (every error names the file, the line and what was expected);
:func:`leaklab.driver.scenarios.scenario_from_file` turns the steps into a
runnable :class:`~leaklab.driver.scenarios.Scenario`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .client import frame_type

#: The ``format`` key's value.
FORMAT = "leaklab-scenario"
#: The newest ``version`` this leaklab reads and writes.
VERSION = 1
#: The names a scenario file may have (YAML for the last two).
SUFFIXES = (".json", ".yaml", ".yml")

__all__ = ["FORMAT", "SUFFIXES", "VERSION", "RawStep", "ScenarioFile", "ScenarioFileError", "frame_type",
           "is_scenario_path", "read_scenario_file", "steps_summary", "write_scenario_file"]


class ScenarioFileError(ValueError):
    """A file that is not a scenario file: says which line, and what was expected."""


@dataclasses.dataclass(frozen=True)
class RawStep:
    """Frames the page sent that no step word covers: sent as recorded, then
    the replies of the types in ``replies`` read (as the page reads them: a
    reply that does not come is not waited for past a quiet second).

    Args:
        frames: the frames, each a JSON object (or a text frame as sent).
        replies: the types of the replies seen after them when recorded.
        at: each frame's time in the recording, in seconds (informative).
    """

    frames: tuple[Any, ...]
    replies: tuple[str, ...] = ()
    at: tuple[float, ...] = ()

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(frame_type(f) for f in self.frames)

    @property
    def word(self) -> str:
        """How the step goes in a run's step log: ``send:heartbeat+fetch-pinned``."""
        return "send:" + "+".join(self.types)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"send": list(self.frames), "replies": list(self.replies)}
        if self.at:
            out["at"] = [round(t, 3) for t in self.at]
        return out


@dataclasses.dataclass
class ScenarioFile:
    """A scenario file's content.

    Args:
        steps: step words (``"connect"``, ``"wait:1.5"``) and raw steps.
        target: the target it was recorded on.
        frames: the recording's log of socket events (see the module doc).
        uncovered: frame types no step word covers, with their counts.
        recorded: how it was recorded (page address, mode, time).
        path: the file read (``None``: built in memory).
        lines: the line of each step in the file (``0``: unknown).
    """

    steps: list[str | RawStep]
    target: str | None = None
    frames: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    uncovered: dict[str, int] = dataclasses.field(default_factory=dict)
    recorded: dict[str, Any] = dataclasses.field(default_factory=dict)
    path: Path | None = None
    lines: list[int] = dataclasses.field(default_factory=list)

    def words(self) -> list[str]:
        """The steps as they show in a run's step log."""
        return [s.word if isinstance(s, RawStep) else s for s in self.steps]

    def line_of(self, index: int) -> int:
        return self.lines[index] if index < len(self.lines) else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "target": self.target, "recorded": dict(self.recorded),
            "steps": [s.as_dict() if isinstance(s, RawStep) else s for s in self.steps],
            "uncovered": dict(self.uncovered), "frames": list(self.frames),
        }


def is_scenario_path(name: Any) -> bool:
    """Whether ``name`` names a scenario file rather than a scenario: a path
    object, or a string ending ``.json``/``.yaml``/``.yml``."""
    if isinstance(name, os.PathLike):
        return True
    return isinstance(name, str) and name.lower().endswith(SUFFIXES)


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def write_scenario_file(path: str | os.PathLike[str], scenario: ScenarioFile) -> Path:
    """Write ``scenario`` to ``path``: YAML when it ends ``.yaml``/``.yml``, else JSON.

    Raises:
        ScenarioFileError: a name that ends otherwise.
    """
    out = Path(path)
    if out.suffix.lower() not in SUFFIXES:
        raise ScenarioFileError(f"{out}: a scenario file's name ends .json, .yaml or .yml")
    data = scenario.as_dict()
    if _is_yaml(out):
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
    else:
        text = _json_text(data)
    out.write_text(text, encoding="utf-8")
    return out


def _json_text(data: Mapping[str, Any]) -> str:
    """JSON with one line per step and per logged event (a diff shows what changed)."""
    def one(v: Any) -> str:
        return json.dumps(v, ensure_ascii=False)

    parts = []
    for key, value in data.items():
        if isinstance(value, list) and value:
            items = ",\n".join(f"  {one(v)}" for v in value)
            parts.append(f" {one(key)}: [\n{items}\n ]")
        else:
            parts.append(f" {one(key)}: {one(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


# -- reading -------------------------------------------------------------------


class _Lines:
    """The line of each key and list item, read off the YAML composer (a JSON
    file is YAML too): where a value that is not what was expected stands."""

    def __init__(self, text: str) -> None:
        try:
            self.root: Any = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            self.root = None

    @staticmethod
    def line(node: Any) -> int:
        return node.start_mark.line + 1 if node is not None else 1

    def value(self, key: str) -> Any:
        if isinstance(self.root, yaml.MappingNode):
            for k, v in self.root.value:
                if getattr(k, "value", None) == key:
                    return v
        return None

    def key_line(self, key: str) -> int:
        return self.line(self.value(key)) if self.value(key) is not None else self.line(self.root)

    def items(self, key: str) -> list[int]:
        node = self.value(key)
        return [self.line(n) for n in node.value] if isinstance(node, yaml.SequenceNode) else []


def _load(path: Path, text: str) -> Any:
    as_json = path.suffix.lower() == ".json" or (not _is_yaml(path) and text.lstrip().startswith("{"))
    if as_json:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioFileError(f"{path} line {exc.lineno}: not JSON ({exc.msg}); expected a scenario "
                                    f"file (format: {FORMAT})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioFileError(f"{path} line {line}: not YAML ({problem}); expected a scenario file "
                                f"(format: {FORMAT})") from None


def _raw_step(path: Path, line: int, item: Mapping[str, Any]) -> RawStep:
    def bad(what: str) -> ScenarioFileError:
        return ScenarioFileError(f"{path} line {line}: {what}")

    unknown = sorted(set(item) - {"send", "replies", "at"})
    if unknown:
        raise bad(f"expected the keys send, replies and at in a raw step, found {', '.join(map(str, unknown))}")
    frames = item.get("send")
    if isinstance(frames, (Mapping, str)):
        frames = [frames]
    if not isinstance(frames, list) or not frames:
        raise bad("expected a list of frames under 'send' (each a JSON object with a 'type')")
    for f in frames:
        if not isinstance(f, (Mapping, str)):
            raise bad(f"expected a frame (a JSON object with a 'type', or a text frame) under 'send', found {f!r}")
    replies = item.get("replies") or []
    if not isinstance(replies, list) or not all(isinstance(r, str) for r in replies):
        raise bad("expected a list of frame types under 'replies'")
    at = item.get("at") or []
    if not isinstance(at, list) or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in at):
        raise bad("expected a list of seconds under 'at'")
    return RawStep(tuple(dict(f) if isinstance(f, Mapping) else f for f in frames), tuple(replies),
                   tuple(float(t) for t in at))


def read_scenario_file(path: str | os.PathLike[str]) -> ScenarioFile:
    """Read a scenario file and check its shape (the step words themselves are
    checked where they are turned into steps).

    Raises:
        ScenarioFileError: no such file, or not a scenario file: names the
            line and what was expected there.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioFileError(f"no scenario file at {p} (`leaklab record -o {p.name}` writes one)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(f"{p}: cannot read it as a scenario file: {exc}") from None
    data = _load(p, text)
    lines = _Lines(text)
    if not isinstance(data, dict):
        raise ScenarioFileError(f"{p} line {lines.line(lines.root)}: expected a mapping with 'format: {FORMAT}' "
                                f"and a list of steps under 'steps', found {type(data).__name__}")
    if data.get("format") != FORMAT:
        found = f"found {data['format']!r}" if "format" in data else "it has no 'format' key"
        raise ScenarioFileError(f"{p} line {lines.key_line('format')}: expected 'format: {FORMAT}' "
                                f"(a file `leaklab record` writes); {found}")
    version = data.get("version", VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ScenarioFileError(f"{p} line {lines.key_line('version')}: expected a version number, found {version!r}")
    if version > VERSION:
        raise ScenarioFileError(f"{p} line {lines.key_line('version')}: written by a newer leaklab (version "
                                f"{version}; this one reads {VERSION})")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ScenarioFileError(f"{p} line {lines.key_line('steps')}: expected a list of steps under 'steps' "
                                f"(connect, switch, text, close, ...)")
    item_lines = lines.items("steps")
    if len(item_lines) != len(steps):
        item_lines = [lines.key_line("steps")] * len(steps)
    out: list[str | RawStep] = []
    for line, item in zip(item_lines, steps):
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
        elif isinstance(item, Mapping) and "send" in item:
            out.append(_raw_step(p, line, item))
        else:
            raise ScenarioFileError(f"{p} line {line}: expected a step word (connect, switch, text, close, "
                                    f"wait:S, ...) or a raw step {{send: [frames], replies: [types]}}, found {item!r}")
    uncovered = data.get("uncovered") or {}
    frames = data.get("frames") or []
    recorded = data.get("recorded") or {}
    target = data.get("target")
    return ScenarioFile(
        out, target=target if isinstance(target, str) else None,
        frames=list(frames) if isinstance(frames, list) else [],
        uncovered=dict(uncovered) if isinstance(uncovered, Mapping) else {},
        recorded=dict(recorded) if isinstance(recorded, Mapping) else {},
        path=p, lines=item_lines,
    )


def steps_summary(steps: Sequence[str | RawStep]) -> str:
    """The steps on one line: ``connect, send:heartbeat, close``."""
    return ", ".join(s.word if isinstance(s, RawStep) else s for s in steps)
