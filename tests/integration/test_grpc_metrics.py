"""Every gRPC service whose metrics are served counts its calls by method and status code
(grpc_server.Observe); one whose metrics nobody serves does not even import them."""
import grpc
import pytest

from switchyard.common import metrics, service_metrics
from switchyard.common.grpc_server import new_server
from switchyard.common.proto import state_pb2, state_pb2_grpc
from switchyard.state.service import StateServicer
from switchyard.state.stores.memory import MemoryStore
from tests.support.fresh_python import run_fresh

GET = "/switchyard.v1.State/Get"


def handled(code: str) -> float:
    return metrics.GRPC_HANDLED.labels(GET, code)._value.get()


@pytest.fixture
def served(monkeypatch):
    """As `serve_if_configured` leaves a service whose variable is set (without its port)."""
    monkeypatch.setattr(service_metrics, "METRICS", metrics)


async def test_calls_are_counted_by_method_and_code(served):
    server, _ = new_server(None)
    store = MemoryStore(max_entries=10, ttl_seconds=60)
    await store.start()
    state_pb2_grpc.add_StateServicer_to_server(StateServicer(store), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    before_nf, before_ok = handled("NOT_FOUND"), handled("OK")
    count_before = metrics.GRPC_LATENCY.labels(GET)._sum.get()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = state_pb2_grpc.StateStub(ch)
            await stub.Put(state_pb2.PutRequest(response=state_pb2.StoredResponse(id="r1")))
            assert (await stub.Get(state_pb2.GetRequest(id="r1"))).id == "r1"
            try:
                await stub.Get(state_pb2.GetRequest(id="missing"))
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(0)
        await store.close()
    assert handled("NOT_FOUND") == before_nf + 1
    assert handled("OK") == before_ok + 1
    assert metrics.GRPC_LATENCY.labels(GET)._sum.get() > count_before


def test_a_service_without_served_metrics_imports_no_prometheus_client():
    code = ("import sys\n"
            "from switchyard.common import service_metrics\n"
            "import switchyard.state.service, switchyard.router.service\n"
            "import switchyard.providers.service\n"
            "service_metrics.serve_if_configured('providers')\n"
            "print(service_metrics.METRICS, 'prometheus_client' in sys.modules)\n")
    out = run_fresh(code, drop_env=lambda name: name.endswith("_METRICS"))
    assert out.split() == ["None", "False"]
