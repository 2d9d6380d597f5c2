"""`python -m tests.emulator --host 127.0.0.1 --port N [--fast] [--latency-ms X] [--chunks K]
[--chunk-delay-ms D]`."""
from __future__ import annotations

import argparse

from aiohttp import web

from tests.emulator.server import build_app
from tests.emulator.state import EmulatorConfig, EmulatorState


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8089)
    p.add_argument("--fast", action="store_true", help="skip validation and recording (benchmarks)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="fixed delay before every reply")
    p.add_argument("--chunks", type=int, default=None, help="text fragments per streamed reply")
    p.add_argument("--chunk-delay-ms", type=float, default=0.0,
                   help="pause after every stream frame (paced streams, as tokens arrive)")
    p.add_argument("--openai-key", action="append", default=[], help="accepted OpenAI/Azure key")
    p.add_argument("--anthropic-key", action="append", default=[], help="accepted Anthropic key")
    p.add_argument("--gemini-key", action="append", default=[], help="accepted Gemini API key")
    a = p.parse_args(argv)
    state = EmulatorState(EmulatorConfig(
        openai_keys=frozenset(a.openai_key), anthropic_keys=frozenset(a.anthropic_key),
        gemini_keys=frozenset(a.gemini_key), fast=a.fast, latency_ms=a.latency_ms, chunks=a.chunks,
        chunk_delay_ms=a.chunk_delay_ms))
    try:
        import uvloop  # optional: faster event loop for benchmarks
        uvloop.install()
    except ImportError:
        pass
    web.run_app(build_app(state), host=a.host, port=a.port, access_log=None,
                handler_cancellation=True, shutdown_timeout=1.0,
                print=lambda *_: print(f"emulator listening on http://{a.host}:{a.port}", flush=True))


if __name__ == "__main__":
    main()
