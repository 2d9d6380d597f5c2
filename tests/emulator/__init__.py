"""An upstream LLM emulator speaking OpenAI Chat Completions, Anthropic Messages and Gemini.

`from tests.emulator import Emulator` for in-process use; `python -m tests.emulator` to run it.
"""
from tests.emulator.runner import Emulator

__all__ = ["Emulator"]
