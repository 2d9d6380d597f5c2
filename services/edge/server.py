"""Run the edge under uvicorn (uvloop + httptools)."""
from __future__ import annotations

import uvicorn

from switchyard.common.config.model import Config
from switchyard.edge.app import create_app


def run_edge(config: Config, config_path: str) -> None:
    lst = config.listener
    uvicorn.run(create_app(config), host=lst.address, port=lst.port, loop="uvloop",
                http="httptools", log_level="warning", access_log=False,
                timeout_graceful_shutdown=10, lifespan="on")
