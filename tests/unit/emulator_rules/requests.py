"""Requests straight to the emulator, for the tests of its rules: one home for the keys and
the minimal bodies the tests add fields to."""
from __future__ import annotations

import httpx

from tests.emulator import Emulator

OPENAI_KEY = "sk-openai-test"
ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


def openai_post(emu: Emulator, **body) -> httpx.Response:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(f"{emu.openai_base_url}/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {OPENAI_KEY}"})


def anthropic_post(emu: Emulator, headers: dict[str, str] | None = None,
                   max_tokens: int = 100, **body) -> httpx.Response:
    body = {"model": "claude-x", "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(f"{emu.url}/v1/messages", json=body, headers={**ANTHROPIC,
                                                                    **(headers or {})})
