"""A small app shaped like Open-LLM-VTuber 1.2 (same modules, classes and
construction sequence), for leaklab's ``olv`` profile tests.

Like upstream, every connection lists the enabled MCP servers' tools through
short-lived MCP clients (real stdio subprocesses, see ``mcpp``), shares the
default context's engines and agent, and gets its own ``MCPClient``.

It has one planted leak: ``ServiceContext.handle_config_switch`` starts an
untracked warm-up task that holds the context until the user's first turn.
"""
