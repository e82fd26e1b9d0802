"""``Live2dModel``: the model's entry in ``model_dict.json`` (read from the current directory)."""

from __future__ import annotations

import json
from typing import Any


class Live2dModel:
    def __init__(self, live2d_model_name: str, model_dict_path: str = "model_dict.json") -> None:
        self.model_dict_path = model_dict_path
        self.model_info: dict[str, Any] = self._lookup(live2d_model_name)

    def _lookup(self, name: str) -> dict[str, Any]:
        with open(self.model_dict_path, encoding="utf-8") as fh:
            models = json.load(fh)
        for model in models:
            if model.get("name") == name:
                return model
        raise KeyError(f"Model {name!r} not found in {self.model_dict_path}")
