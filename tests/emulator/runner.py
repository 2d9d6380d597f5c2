"""`Emulator`: run the emulator in a background thread for in-process tests."""
from __future__ import annotations

import time
from collections.abc import Iterable

from tests.emulator.app_thread import AppThread
from tests.emulator.server import build_app
from tests.emulator.state import EmulatorConfig, EmulatorState


class Emulator:
    """An upstream OpenAI/Anthropic/Gemini/Bedrock emulator on a free port, in its own thread.

    `emu = Emulator(); emu.start(); emu.url; emu.stop()`, or `with Emulator() as emu: ...`.
    """

    def __init__(self, *, openai_keys: Iterable[str] = (), anthropic_keys: Iterable[str] = (),
                 gemini_keys: Iterable[str] = (), bedrock_api_keys: Iterable[str] = (),
                 bedrock_credentials: Iterable[tuple[str, str, str | None]] = (),
                 bedrock_region: str = "us-east-1", fast: bool = False, latency_ms: float = 0.0,
                 chunks: int | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = EmulatorState(EmulatorConfig(
            openai_keys=frozenset(openai_keys), anthropic_keys=frozenset(anthropic_keys),
            gemini_keys=frozenset(gemini_keys), bedrock_api_keys=frozenset(bedrock_api_keys),
            bedrock_credentials=tuple(bedrock_credentials), bedrock_region=bedrock_region,
            fast=fast, latency_ms=latency_ms, chunks=chunks))
        self.host = host
        self.port = port
        self._server: AppThread | None = None

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> Emulator:
        """Start serving; returns once the port is bound (raises if it could not be)."""
        self._server = AppThread(lambda: build_app(self.state), host=self.host, port=self.port,
                                 name="llm-emulator", shutdown_timeout=1.0)
        self.port = self._server.start(timeout)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (in-flight requests get a second to finish)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- addresses ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """http://host:port — Anthropic SDK base_url; append /v1 for the OpenAI SDK."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def gemini_base_url(self) -> str:
        """The Gemini API root (google-genai: `http_options={"base_url": emu.url}`)."""
        return f"{self.url}/v1beta"

    # ---- test API -----------------------------------------------------------------------
    def script(self, model: str, *steps: dict) -> None:
        """Queue behaviours for requests naming `model` ("*" for any), consumed in order."""
        self.state.script(model, list(steps))

    def requests(self) -> list[dict]:
        """Recorded requests: method, path, query, headers, json, model, api, stream, status, time."""
        return self.state.requests()

    def disconnects(self) -> list[dict]:
        """Replies the client abandoned before their end (api, path, model, stream, frames_sent)."""
        return self.state.disconnects()

    def reset(self) -> None:
        self.state.reset()

    def wait_for_disconnects(self, count: int = 1, timeout: float = 5.0) -> list[dict]:
        """Poll until at least `count` disconnects were recorded (raises TimeoutError)."""
        return _poll(lambda: self.disconnects() if len(self.disconnects()) >= count else None,
                     timeout, f"{count} disconnect(s)")

    def wait_for_requests(self, count: int = 1, timeout: float = 5.0) -> list[dict]:
        """Poll until at least `count` requests were recorded (raises TimeoutError)."""
        return _poll(lambda: self.requests() if len(self.requests()) >= count else None,
                     timeout, f"{count} request(s)")


def _poll(probe, timeout: float, what: str):
    """Re-check `probe` until it returns non-None or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)
