"""Benchmark harness: Switchyard vs the LiteLLM proxy vs the emulator itself (the floor)."""
