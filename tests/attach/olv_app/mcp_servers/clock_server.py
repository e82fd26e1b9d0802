"""A tiny stdio MCP server with one tool, ``get_time`` (test app only).

Upstream's template enables ``time`` and ``ddg-search``, both started with
``uvx``; this one needs nothing but the ``mcp`` package, so the app can start
a real MCP subprocess wherever leaklab runs. ``mcp_servers.json`` registers
it as ``clock`` with the command ``python`` (run as ``sys.executable``).
"""

from __future__ import annotations

import sys
import warnings
from datetime import datetime, timezone

# Test-app convenience: mcp 1.x's jsonschema imports rfc3987-syntax where it
# is installed (Jupyter brings it into leaklab's environment), which builds a
# parser at import: seconds on every server start. This tool checks no formats.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

# mcp 1.x's FastMCP settings trip a pydantic-settings warning on import; it
# would print on the app's console at every start of this server.
warnings.filterwarnings("ignore", category=UserWarning, module=r"pydantic_settings(\..*)?$")

try:
    from mcp.server.fastmcp import FastMCP
except ImportError:  # mcp 2.x renamed FastMCP to MCPServer
    from mcp.server.mcpserver import MCPServer as FastMCP

# WARNING: the SDK logs every request at INFO on stderr, which is the app's
# console here.
server = FastMCP("clock", log_level="WARNING")


@server.tool()
def get_time() -> str:
    """The current time, in UTC, as an ISO 8601 string."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


if __name__ == "__main__":
    server.run()
