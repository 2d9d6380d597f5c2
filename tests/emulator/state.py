"""The emulator's shared state: config, scripted steps, recorded requests and disconnects.

Handlers run on the emulator's event loop thread while tests read and script from their own
thread, so every access goes through one lock.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.emulator.steps import validate_step

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022",
                  "gemini-2.0-flash", "gemini-3-pro-preview")


@dataclass(frozen=True)
class EmulatorConfig:
    """Accepted keys (empty set: any non-empty key), fast mode, fixed latency, stream chunks."""
    openai_keys: frozenset[str] = frozenset()
    anthropic_keys: frozenset[str] = frozenset()
    gemini_keys: frozenset[str] = frozenset()
    # Bedrock: API keys (bearer), SigV4 credentials as (access key id, secret, session token
    # or None) — empty: any well-formed signature —, and the region signatures must name.
    bedrock_api_keys: frozenset[str] = frozenset()
    bedrock_credentials: tuple[tuple[str, str, str | None], ...] = ()
    bedrock_region: str = "us-east-1"
    fast: bool = False
    latency_ms: float = 0.0
    chunks: int | None = None
    chunk_delay_ms: float = 0.0   # pause after every stream frame: one network read each
    models: tuple[str, ...] = field(default=DEFAULT_MODELS)


class EmulatorState:
    """Scripts keyed by model (or "*"), the request log and the disconnect log."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[dict]] = {}
        self._requests: list[dict] = []
        self._disconnects: list[dict] = []
        self._ids = itertools.count(1)
        self.request_count = 0  # also counted in fast mode, where nothing is recorded

    # ---- scripts ------------------------------------------------------------------------
    def script(self, model: str, steps: list[dict]) -> int:
        """Queue steps for `model` ("*" for any); returns the queue length."""
        checked = [validate_step(s) for s in steps]
        with self._lock:
            queue = self._scripts.setdefault(model or "*", deque())
            queue.extend(checked)
            return len(queue)

    def has_scripts(self) -> bool:
        return bool(self._scripts)

    def next_step(self, model: str) -> dict | None:
        """Pop the next step for `model`, else for "*"; None means the default reply."""
        if not self._scripts:
            return None
        with self._lock:
            for key in (model, "*"):
                queue = self._scripts.get(key)
                if queue:
                    step = queue.popleft()
                    if not queue:
                        del self._scripts[key]
                    return step
        return None

    # ---- logs ---------------------------------------------------------------------------
    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Append a request record (the caller may fill in `status` later) and return it."""
        entry.setdefault("time", time.time())
        with self._lock:
            entry["index"] = self.request_count
            self.request_count += 1
            self._requests.append(entry)
        return entry

    def count(self) -> None:
        with self._lock:
            self.request_count += 1

    def add_disconnect(self, entry: dict[str, Any]) -> None:
        entry.setdefault("time", time.time())
        with self._lock:
            self._disconnects.append(entry)

    def requests(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def disconnects(self) -> list[dict]:
        with self._lock:
            return [dict(d) for d in self._disconnects]

    def reset(self) -> None:
        """Forget scripts, requests and disconnects (ids keep counting so they stay unique)."""
        with self._lock:
            self._scripts.clear()
            self._requests.clear()
            self._disconnects.clear()
            self.request_count = 0

    def new_id(self, prefix: str) -> str:
        """A unique id shaped like the provider's (chatcmpl-, msg_, call_, toolu_, req_)."""
        n = next(self._ids)
        return f"{prefix}emu{n:021d}"
