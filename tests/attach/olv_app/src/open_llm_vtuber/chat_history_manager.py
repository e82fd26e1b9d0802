"""Chat history as JSON files under ``chat_history/<conf_uid>/`` (relative, like upstream)."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime


def _path(conf_uid: str, history_uid: str) -> str:
    return os.path.join("chat_history", conf_uid, f"{history_uid}.json")


def create_new_history(conf_uid: str) -> str:
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
    path = _path(conf_uid, history_uid)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    messages = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            messages = json.load(fh)
    messages.append({"role": role, "content": content, "timestamp": datetime.now().isoformat()})
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(messages, fh)
