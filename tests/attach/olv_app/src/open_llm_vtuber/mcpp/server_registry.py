"""``ServerRegistry``: the MCP servers of ``mcp_servers.json``."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from .types import MCPServer

logger = logging.getLogger(__name__)

# Relative to the current directory, as upstream resolves it.
DEFAULT_CONFIG_PATH = "mcp_servers.json"


class ServerRegistry:
    """The servers ``mcp_servers.json`` defines and this machine can start.

    Args:
        config_path: the JSON file, ``{"mcp_servers": {name: {"command":
            ..., "args": [...], "env": {...}, "cwd": ..., "timeout": s}}}``.

    Raises:
        ValueError: the file does not exist or is not a ``.json`` file.
    """

    def __init__(self, config_path: str | Path = DEFAULT_CONFIG_PATH) -> None:
        path = Path(config_path)
        if path.suffix != ".json" or not path.is_file():
            logger.error("MCPSR: File '%s' does not exist, or is not a json file.", path)
            raise ValueError(f"MCPSR: File '{path}' does not exist, or is not a json file.")
        self.config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        self.servers: dict[str, MCPServer] = {}
        self.load_servers()

    def load_servers(self) -> None:
        """Fill :attr:`servers`, skipping entries this machine cannot start."""
        servers_config: dict[str, dict[str, Any]] = self.config.get("mcp_servers", {})
        if not servers_config:
            logger.warning("MCPSR: No servers found in the config file.")
            return
        for name, details in servers_config.items():
            if "command" not in details or "args" not in details:
                logger.warning("MCPSR: Invalid server details for '%s'. Ignoring.", name)
                continue
            command = details["command"]
            if command == "python":
                # Test-app convenience: run a local server in this interpreter's
                # environment (a venv's python is not always first on PATH).
                command = sys.executable
            if shutil.which(command) is None:
                # Upstream does the same for npx, uvx and node: a server whose
                # runtime is missing is dropped, with one line in the log.
                logger.warning("MCPSR: %s is not available. Cannot load server '%s'.", command, name)
                continue
            self.servers[name] = MCPServer(
                name=name,
                command=command,
                args=list(details["args"]),
                env=details.get("env"),
                cwd=details.get("cwd"),
                timeout=float(details.get("timeout") or 30.0),
            )
            logger.debug("MCPSR: Loaded server: '%s'.", name)

    def remove_server(self, server_name: str) -> None:
        """Forget one server."""
        if self.servers.pop(server_name, None) is None:
            logger.warning("MCPSR: Server '%s' not found. Cannot remove.", server_name)

    def get_server(self, server_name: str) -> MCPServer | None:
        """The server called ``server_name``, or ``None``."""
        return self.servers.get(server_name)
