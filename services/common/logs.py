"""Logging setup: one line per record, tagged with the service name."""
from __future__ import annotations

import logging
import os


def setup_logging(service: str) -> None:
    level = os.environ.get("SWITCHYARD_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
