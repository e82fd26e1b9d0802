"""Chat history as JSON files under ``chat_history/<conf_uid>/`` (relative, like upstream)."""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)


def _path(conf_uid: str, history_uid: str) -> str:
    return os.path.join("chat_history", conf_uid, f"{history_uid}.json")


def create_new_history(conf_uid: str) -> str:
    """A new history file holding only a metadata entry; its uid."""
    if not conf_uid:
        return ""
    history_uid = f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{uuid.uuid4().hex}"
    os.makedirs(os.path.join("chat_history", conf_uid), exist_ok=True)
    with open(_path(conf_uid, history_uid), "w", encoding="utf-8") as fh:
        json.dump([{"role": "metadata", "timestamp": datetime.now().isoformat()}], fh)
    return history_uid


def get_history(conf_uid: str, history_uid: str) -> list[dict]:
    """The stored messages of one history, oldest first (none if it does not exist)."""
    path = _path(conf_uid, history_uid)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [m for m in json.load(fh) if m.get("role") != "metadata"]


def get_all_messages(conf_uid: str) -> list[dict]:
    """Every stored message of every history of ``conf_uid``, file by file
    (oldest file name first)."""
    folder = os.path.join("chat_history", conf_uid)
    if not os.path.isdir(folder):
        return []
    messages: list[dict] = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            messages.extend(get_history(conf_uid, name[: -len(".json")]))
    return messages


def store_message(conf_uid: str, history_uid: str, role: str, content: str) -> None:
    """Append one message: reads and rewrites the whole file (as upstream).
    Without a history (no ``create-new-history`` yet) nothing is stored."""
    if not conf_uid or not history_uid:
        logger.warning("Missing conf_uid or history_uid: message not stored")
        return
    path = _path(conf_uid, history_uid)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    messages = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            messages = json.load(fh)
    messages.append({"role": role, "content": content, "timestamp": datetime.now().isoformat()})
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(messages, fh)


def get_history_list(conf_uid: str) -> list[dict[str, Any]]:
    """Each history of ``conf_uid`` with its latest message, newest first.

    As upstream, synchronously: opens and parses every file of the
    character; deletes the empty ones (only a metadata entry) when a
    non-empty one exists, else all empty ones but one.
    """
    folder = os.path.join("chat_history", conf_uid)
    if not conf_uid or not os.path.isdir(folder):
        return []
    histories: list[dict[str, Any]] = []
    empty: list[str] = []
    for name in os.listdir(folder):
        if not name.endswith(".json"):
            continue
        history_uid = name[: -len(".json")]
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                messages = [m for m in json.load(fh) if m.get("role") != "metadata"]
        except (OSError, ValueError) as exc:
            logger.error("Error reading history file %s: %s", name, exc)
            continue
        if not messages:
            empty.append(history_uid)
            continue
        latest = messages[-1]
        histories.append({"uid": history_uid, "latest_message": latest, "timestamp": latest.get("timestamp")})
    for history_uid in empty if histories else empty[1:]:
        try:
            os.remove(_path(conf_uid, history_uid))
        except OSError as exc:
            logger.error("Failed to delete empty history %s: %s", history_uid, exc)
    histories.sort(key=lambda h: h["timestamp"] or "", reverse=True)
    return histories


def delete_history(conf_uid: str, history_uid: str) -> bool:
    """Remove a history file; whether there was one."""
    path = _path(conf_uid, history_uid)
    if not conf_uid or not history_uid or not os.path.exists(path):
        return False
    os.remove(path)
    return True
