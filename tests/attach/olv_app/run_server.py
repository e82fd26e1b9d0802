"""How upstream starts itself (``uv run run_server.py``); leaklab's ``olv``
profile repeats these steps in-process, from a temporary copy of conf.yaml."""

import asyncio

import uvicorn

from src.open_llm_vtuber.config_manager import read_yaml, validate_config
from src.open_llm_vtuber.server import WebSocketServer

if __name__ == "__main__":
    config = validate_config(read_yaml("conf.yaml"))
    server = WebSocketServer(config=config)
    asyncio.run(server.initialize())
    uvicorn.run(app=server.app, host=config.system_config.host, port=config.system_config.port)
