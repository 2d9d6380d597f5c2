"""One emulator per module for the tests of its request rules, reset before each test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulator import Emulator
from tests.unit.emulator_rules.requests import OPENAI_KEY


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(openai_keys={OPENAI_KEY}, anthropic_keys={"sk-ant-test"}) as e:
        yield e


@pytest.fixture(autouse=True)
def _fresh(emu: Emulator) -> None:
    emu.reset()
