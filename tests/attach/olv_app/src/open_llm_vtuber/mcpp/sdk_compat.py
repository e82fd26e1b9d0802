"""What differs between the ``mcp`` SDK 1.x and 2.x, in one place.

1.x takes the read timeout as a ``timedelta`` and names fields in camelCase
(``inputSchema``, ``isError``); 2.x takes seconds and uses snake_case.
"""

from __future__ import annotations

import importlib.metadata
from datetime import timedelta
from typing import Any

try:
    MCP_MAJOR = int(importlib.metadata.version("mcp").split(".")[0])
except (importlib.metadata.PackageNotFoundError, ValueError):
    MCP_MAJOR = 1


def read_timeout(seconds: float) -> Any:
    """The ``read_timeout_seconds`` argument of ``ClientSession``."""
    return timedelta(seconds=seconds) if MCP_MAJOR < 2 else float(seconds)


def tool_input_schema(tool: Any) -> dict[str, Any]:
    """A listed tool's JSON schema of arguments."""
    schema = getattr(tool, "input_schema", None)
    if schema is None:
        schema = getattr(tool, "inputSchema", None)
    return dict(schema or {})


def result_is_error(result: Any) -> bool:
    """Whether a ``call_tool`` result reports a tool error."""
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))
