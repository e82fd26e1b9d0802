"""Stdio MCP servers that the reference backend's MCP client launches.

The servers are started by file path with the current interpreter, so this
package only names the scripts: importing it must not import ``mcp`` (the
backend imports it on every session set-up, the SDK import is slow).
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

#: Server name -> script path; run each as ``[sys.executable, str(path)]``.
SERVER_SCRIPTS: dict[str, Path] = {
    "clock": _HERE / "clock_server.py",
    "notes": _HERE / "notes_server.py",
}
