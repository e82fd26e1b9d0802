"""MCP "Plus" (``mcpp``): tool calling through MCP servers, as upstream."""
