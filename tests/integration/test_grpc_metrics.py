"""Every gRPC service counts its calls by method and status code (grpc_server.Observe)."""
import grpc

from switchyard.common import metrics
from switchyard.common.grpc_server import new_server
from switchyard.common.proto import state_pb2, state_pb2_grpc
from switchyard.state.service import StateServicer
from switchyard.state.stores.memory import MemoryStore

GET = "/switchyard.v1.State/Get"


def handled(code: str) -> float:
    return metrics.GRPC_HANDLED.labels(GET, code)._value.get()


async def test_calls_are_counted_by_method_and_code():
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
