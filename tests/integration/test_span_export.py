"""The span exporter process for real: spans recorded here, shipped over the pipe to a real
`python -m switchyard.common.telemetry.exporter`, exported over OTLP/gRPC to a real receiver
(tests/support/otlp.py), with the standard OTEL_* variables, restarts and a killed service."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from opentelemetry.trace import SpanKind

from switchyard.common.config.model import Tracing
from switchyard.common.telemetry import propagation, shipper, spans, tracer
from tests.support.otlp import OTLPReceiver, _Servicer, _value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RecordingServicer(_Servicer):
    """The receiver's servicer, also keeping each call's metadata and resource attributes."""

    def __init__(self, sink: "Receiver") -> None:
        super().__init__(sink)
        self.receiver = sink

    async def Export(self, request, context):
        self.receiver.metadata.append(dict(context.invocation_metadata()))
        for rs in request.resource_spans:
            self.receiver.resources.append({a.key: _value(a.value)
                                            for a in rs.resource.attributes})
        return await super().Export(request, context)


class Receiver(OTLPReceiver):
    def __init__(self) -> None:
        super().__init__()
        self.metadata: list[dict] = []
        self.resources: list[dict] = []

    def servicer(self) -> RecordingServicer:
        return RecordingServicer(self)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def traced():
    yield
    tracer.shutdown()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:   # a zombie until its parent reaps it
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def wait_until(check, timeout: float, what: str):
    end = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
    return found


def test_spans_reach_the_collector_configured_by_otel_variables(receiver, traced,
                                                                monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=tok-123")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=it")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    assert tracer.setup(Tracing(random_sampling=100), "providers")
    root = tracer.TRACER.start_span("execute gpt-4o-mini", kind=SpanKind.SERVER,
                                    context=propagation.context_from(
                                        "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"),
                                    attributes={"switchyard.plan": "p"})
    with tracer.TRACER.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT,
                                             context=propagation.context_from(
                                                 propagation.format_traceparent(
                                                     root.get_span_context()))) as attempt:
        attempt.set_attribute("switchyard.attempt", 1)
    root.end()
    # Exported on the 50 ms schedule, while the service runs (not only at shutdown).
    got = receiver.wait_for(lambda s: s if len(s) == 2 else None, 20, "both spans")
    by_name = {s.name: s for s in got}
    execute, chat = by_name["execute gpt-4o-mini"], by_name["chat gpt-4o-mini"]
    assert {s.service for s in got} == {"switchyard-providers"}
    assert execute.trace_id == "ab" * 16 and execute.parent_id == "cd" * 8
    assert chat.parent_id == execute.span_id and chat.kind == 3
    assert chat.attributes == {"switchyard.attempt": 1}
    assert receiver.metadata[0]["x-collector-token"] == "tok-123"
    assert receiver.resources[0]["deployment.environment"] == "it"
    assert receiver.resources[0]["service.namespace"] == "switchyard"
    pid = tracer._shipper.exporter_pid
    assert pid is not None
    tracer.shutdown()
    assert gone(pid)


def test_a_dead_exporter_is_restarted_and_the_hot_path_never_waits(receiver):
    ship = shipper.Shipper({"service": "edge", "endpoint": receiver.endpoint,
                            "schedule_delay_ms": 20}, interval_s=0.02, respawn_after_s=0.2)
    try:
        t = spans.SpanTracer(ship.add, 1.0)
        t.start_span("first").end()
        receiver.wait_for(lambda s: s, 20, "the first span")
        first = ship.exporter_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: gone(first), 10, "the exporter to die")

        def after_restart():
            start = time.perf_counter()
            for _ in range(100):
                t.start_span("again").end()
            assert time.perf_counter() - start < 0.5   # ~µs each, exporter or not
            return any(s.name == "again" for s in receiver.spans())
        wait_until(after_restart, 20, "spans through a restarted exporter")
        assert ship.exporter_pid not in (None, first)
    finally:
        ship.shutdown(10)


def test_a_killed_service_still_gets_its_shipped_spans_out(receiver):
    # The export schedule is ten minutes: the span can only leave at the exporter's EOF.
    script = textwrap.dedent(f"""
        import os, signal
        from switchyard.common.telemetry import shipper, spans
        ship = shipper.Shipper({{"service": "edge", "endpoint": {receiver.endpoint!r},
                                "schedule_delay_ms": 600000}}, interval_s=3600)
        spans.SpanTracer(ship.add, 1.0).start_span("before the kill").end()
        ship._ship()
        print(ship.exporter_pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    pid = int(done.stdout.strip())
    got = receiver.wait_for(lambda s: s, 20, "the span flushed at EOF")
    assert [s.name for s in got] == ["before the kill"]
    wait_until(lambda: gone(pid), 20, "the orphaned exporter to exit")


def test_an_unreachable_collector_costs_the_service_nothing_and_shutdown_is_bounded():
    ship = shipper.Shipper({"service": "edge", "endpoint": "http://127.0.0.1:9",
                            "schedule_delay_ms": 20}, interval_s=0.02)
    t = spans.SpanTracer(ship.add, 1.0)
    start = time.perf_counter()
    for _ in range(5000):
        t.start_span("lost", attributes={"n": 1}).end()
    assert time.perf_counter() - start < 1.0
    wait_until(lambda: ship.exporter_pid, 20, "the exporter to start")
    pid = ship.exporter_pid
    start = time.monotonic()
    ship.shutdown(timeout_s=2)
    assert time.monotonic() - start < 10
    assert gone(pid)


def test_a_collector_that_comes_up_late_gets_the_retried_export(capfd):
    """The SDK's retry reconnects the channel after UNAVAILABLE; the reconnected client must
    still send our pre-encoded bytes."""
    late = Receiver()   # its port is chosen, nothing listens there yet
    ship = shipper.Shipper({"service": "edge", "endpoint": late.endpoint,
                            "schedule_delay_ms": 20}, interval_s=0.02)
    logged: list[str] = []

    def failed_once() -> bool:   # the exporter's stderr is this process's
        logged.append(capfd.readouterr().err)
        return "Transient error StatusCode.UNAVAILABLE" in "".join(logged)

    try:
        spans.SpanTracer(ship.add, 1.0).start_span("early").end()
        wait_until(failed_once, 20, "the first export to meet a closed port")
        with late:   # the SDK retries after ~1 s, then ~2 s and ~4 s
            got = late.wait_for(lambda s: s, 15, "the retried export")
        assert [s.name for s in got] == ["early"]
    finally:
        ship.shutdown(10)


def exporter_affinity(receiver, cpus_setting: str | None) -> tuple[set[int], set[int]]:
    """(the service's CPUs, its exporter's CPUs) for a service pinned to CPU 0."""
    script = textwrap.dedent(f"""
        import os
        from switchyard.common.telemetry import shipper, spans
        os.sched_setaffinity(0, {{0}})   # the service, pinned like the bench pins it
        ship = shipper.Shipper({{"service": "edge", "endpoint": {receiver.endpoint!r},
                                "schedule_delay_ms": 20}}, interval_s=3600)
        spans.SpanTracer(ship.add, 1.0).start_span("pinned").end()
        ship._ship()
        print(sorted(os.sched_getaffinity(0)), sorted(os.sched_getaffinity(ship.exporter_pid)))
        ship.shutdown(10)
    """)
    env = {k: v for k, v in os.environ.items() if k != shipper.EXPORTER_CPUS_ENV}
    if cpus_setting is not None:
        env[shipper.EXPORTER_CPUS_ENV] = cpus_setting
    done = subprocess.run([sys.executable, "-c", script], env={**env, "PYTHONPATH": ROOT},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    service, exporter = done.stdout.split("] [")
    return ({int(c) for c in service.strip("[] \n").split(",")},
            {int(c) for c in exporter.strip("[] \n").split(",")})


def test_the_exporter_of_a_pinned_service_keeps_off_its_cpu(receiver):
    service, exporter = exporter_affinity(receiver, None)
    assert service == {0}
    others = set(range(os.cpu_count() or 1)) - {0}
    assert exporter == (others or {0})


def test_the_exporters_cpus_can_be_set_or_inherited(receiver):
    assert exporter_affinity(receiver, "inherit") == ({0}, {0})
    last = (os.cpu_count() or 1) - 1
    assert exporter_affinity(receiver, f"{last}") == ({0}, {last})


def test_exporter_cpu_lists_read_like_taskset():
    assert shipper.exporter_cpus("0,2-3", {0}, 8) == {0, 2, 3}
    assert shipper.exporter_cpus(" inherit ", {0}, 3) is None
    assert shipper.exporter_cpus(None, {0}, 3) == {1, 2}       # pinned: the other CPUs
    assert shipper.exporter_cpus(None, {0, 1, 2}, 3) is None   # unpinned: as it is
    with pytest.raises(ValueError):
        shipper.exporter_cpus("all", {0}, 3)
