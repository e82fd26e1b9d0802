"""A tiny stdio MCP server that keeps notes in memory.

Launched by file path (``[sys.executable, path]``) by
:class:`leaklab.backend.mcp_client.MCPClient`, so it must not import the
``leaklab`` package: every session of the reference backend starts one, and
start-up time is paid on each session cycle. Only the SDK's high-level server
is imported (``MCPServer`` in mcp 2.x, ``FastMCP`` in mcp 1.x).

Notes live for the life of the process, i.e. one client session: a leaked
server process therefore also keeps its notes, as a real one would.
The SDK's stdio transport ends the server loop when stdin reaches EOF, so the
process exits as soon as the client closes its end of the pipe.
"""

from __future__ import annotations

import contextlib
import os
import sys

# mcp 1.x's server imports jsonschema, whose optional "iri" format checker
# imports rfc3987-syntax where that is installed (Jupyter brings it), and
# that builds a parser at import: 1.5 s more on every server start. These
# tools never check formats, so that one optional import is blocked (a
# no-op with mcp 2.x, whose server does not import jsonschema).
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

try:  # mcp 2.x
    from mcp.server.mcpserver import MCPServer
except ImportError:  # mcp 1.x: the same high-level server, named FastMCP
    from mcp.server.fastmcp import FastMCP as MCPServer

# WARNING, not the SDK's INFO default: the client discards stderr anyway, but
# a quiet server does less work per request. Tools are declared with
# structured_output=False: text is all the backend uses, and a declared output
# schema makes the SDK client import jsonschema (about 1 s, blocking the
# client's event loop) and compile a validator in every session.
server = MCPServer("notes", log_level="WARNING")

_notes: list[str] = []


@server.tool(structured_output=False)
def remember(note: str) -> str:
    """Store a note for later recall.

    Args:
        note: the text to remember.
    """
    _notes.append(note)
    return f"remembered note #{len(_notes)}"


@server.tool(structured_output=False)
def recall() -> str:
    """Return every note remembered so far, one per line, oldest first."""
    if not _notes:
        return "no notes"
    return "\n".join(_notes)


if __name__ == "__main__":
    server.run("stdio")  # returns when stdin reaches EOF
    # Skip interpreter teardown: unloading the SDK's module graph takes about
    # 0.3 s, and the client waits for this exit on every session close.
    # Each response was flushed as it was written; flush anything else
    # (mcp 1.x closes stdout when the server loop ends).
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(ValueError, OSError):
            stream.flush()
    os._exit(0)
