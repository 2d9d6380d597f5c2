import pytest

from tests.e2e.clients import ROUTE_MODELS
from tests.e2e.harness import (
    ANTHROPIC_KEY,
    BEDROCK_AKID,
    BEDROCK_REGION,
    BEDROCK_SECRET,
    OPENAI_KEY,
    Gateway,
    free_port,
    gateway_config,
)
from tests.emulator import Emulator
from tests.support.otlp import OTLPReceiver


@pytest.fixture(scope="session")
def emulator():
    emu = Emulator(openai_keys={OPENAI_KEY}, anthropic_keys={ANTHROPIC_KEY},
                   bedrock_credentials=[(BEDROCK_AKID, BEDROCK_SECRET, None)],
                   bedrock_region=BEDROCK_REGION)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def gateway(emulator, tmp_path_factory):
    port = free_port()
    gw = Gateway(gateway_config(emulator.url, port, state="state_storage: {type: memory}"),
                 tmp_path_factory.mktemp("gateway"), port)
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def otlp():
    """A real OTLP/gRPC trace receiver, one per test module that asks for it."""
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def emu(emulator):
    emulator.reset()
    return emulator


@pytest.fixture
def openai_client(gateway):
    from openai import OpenAI
    return OpenAI(api_key="test-key", base_url=f"{gateway.url}/v1", max_retries=0, timeout=30)


@pytest.fixture
def anthropic_client(gateway):
    import anthropic
    return anthropic.Anthropic(api_key="test-key", base_url=gateway.url, max_retries=0,
                               timeout=30)


@pytest.fixture(params=list(ROUTE_MODELS))
def route_model(request):
    """A model on each upstream family: OpenAI, Anthropic, Gemini."""
    return ROUTE_MODELS[request.param]
