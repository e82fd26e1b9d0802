"""A small app shaped like Open-LLM-VTuber 1.2 (same modules, classes and
construction sequence), for leaklab's ``olv`` profile tests.

Like upstream, every connection lists the enabled MCP servers' tools through
short-lived MCP clients (real stdio subprocesses, see ``mcpp``), shares the
default context's engines and agent, and gets its own ``MCPClient``.

Every checklist cause (C1-C9) is planted as a switchable fault, the way
upstream's code could have it (see :mod:`.faults`), chosen by the
environment variable ``OLV_APP_FAULTS`` (a test-app convenience). Unset, only
C8 is on: ``ServiceContext.handle_config_switch`` starts an untracked warm-up
task that holds the context until the user's first turn. ``none`` runs a
backend with no leak.
"""
