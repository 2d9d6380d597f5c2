"""One JSON line per request (`logging: {requests: json}`), written by a background thread
so a slow stderr never stalls the event loop. Callers pass only counts, ids and names:
never message content or keys."""
from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
from typing import Any

import orjson

LOGGER = "switchyard.requests"
ENABLED = False
_log = logging.getLogger(LOGGER)
_listener: logging.handlers.QueueListener | None = None


class _Raw(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def setup(enabled: bool, stream: Any = None) -> None:
    """Route request lines to `stream` (stderr) through a queue; idempotent."""
    global ENABLED, _listener
    ENABLED = enabled
    if not enabled or _listener is not None:
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Raw())
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _log.addHandler(logging.handlers.QueueHandler(q))
    _log.setLevel(logging.INFO)
    _log.propagate = False   # the line is the JSON object, not a formatted log record
    _listener = logging.handlers.QueueListener(q, handler)
    _listener.start()
    atexit.register(shutdown)


def emit(fields: dict[str, Any]) -> None:
    """Write one request's line."""
    _log.info("%s", orjson.dumps(fields).decode())


def shutdown() -> None:
    """Flush what is queued (at exit)."""
    global _listener
    listener, _listener = _listener, None
    if listener is not None:
        listener.stop()
