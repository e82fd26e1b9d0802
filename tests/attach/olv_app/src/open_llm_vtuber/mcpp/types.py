"""Plain data types shared by the ``mcpp`` modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class MCPServer:
    """One entry of ``mcp_servers.json``.

    Attributes:
        name: the key in ``mcp_servers``.
        command: the executable (already resolved for ``python``).
        args: its arguments.
        env: extra environment variables, or ``None``.
        cwd: its working directory, or ``None`` (the app's).
        timeout: read timeout of the session, in seconds.
    """

    name: str
    command: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    timeout: float = 30.0


@dataclass
class FormattedTool:
    """A tool as listed by its server, with the server that runs it."""

    input_schema: dict[str, Any]
    related_server: str
    generic_schema: dict[str, Any] | None = None
    description: str = "No description available."


@dataclass
class ToolCallFunctionObject:
    """The ``function`` part of an OpenAI tool call."""

    name: str = ""
    arguments: str = ""


@dataclass
class ToolCallObject:
    """An OpenAI tool call, assembled from the streamed deltas."""

    id: str | None = None
    type: str = "function"
    index: int = 0
    function: ToolCallFunctionObject = field(default_factory=ToolCallFunctionObject)
