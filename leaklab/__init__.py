"""leaklab: find, explain and prove per-session leaks in asyncio WebSocket backends.

The package reads as a pipeline, data flowing one way:

    backend/   the reference server under test (knows nothing of leaklab)
    serving    run an ASGI app on uvicorn, on the caller's event loop
    cli        thin layer over the same calls the notebooks make

Importing ``leaklab`` stays cheap (no pandas, no backend): the MCP servers
and CLI start fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
