"""A tiny stdio MCP server that keeps notes in memory.

Launched by file path (``[sys.executable, path]``) by
:class:`leaklab.backend.mcp_client.MCPClient`, so it must not import the
``leaklab`` package: every session of the reference backend starts one, and
start-up time is paid on each session cycle. Only the SDK's high-level server
is imported.

Notes live for the life of the process, i.e. one client session: a leaked
server process therefore also keeps its notes, as a real one would.
The SDK's stdio transport ends the server loop when stdin reaches EOF, so the
process exits as soon as the client closes its end of the pipe.
"""

from __future__ import annotations

import os
import sys
from mcp.server.mcpserver import MCPServer

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
    # Each response was flushed as it was written; flush anything else.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
