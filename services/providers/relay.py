"""After the commit point: send the first batch, then relay the rest of the stream as it
comes. Nothing is retried from here on; a failure becomes the stream's last event (the
last of its batch, which is where `Executor.generate` scrubs it of secrets)."""
from __future__ import annotations

from collections.abc import AsyncGenerator

from switchyard.common.config.model import ProviderEntry
from switchyard.common.proto import chat_pb2, router_pb2
from switchyard.providers import failures
from switchyard.providers.attempt import Committed
from switchyard.providers.breaker import CircuitBreaker
from switchyard.providers.http_client import HttpError
from switchyard.providers.stream_reader import StreamReader, first_error


def stamp_start(events: list[chat_pb2.StreamEvent], entry: ProviderEntry,
                target: router_pb2.Target, attempts: int, dropped: list[str],
                upstream_ms: float) -> None:
    """Make `start` the first event and fill in what only the executor knows."""
    at = next((i for i, ev in enumerate(events) if ev.HasField("start")), -1)
    if at < 0:
        ev = chat_pb2.StreamEvent(start=chat_pb2.StreamStart(model=target.model))
    else:
        ev = events.pop(at)
    events.insert(0, ev)
    start = ev.start
    start.provider = entry.name
    start.attempts = attempts
    start.dropped_params.extend(d for d in dropped if d not in start.dropped_params)
    start.upstream_ms = upstream_ms


async def relay(committed: Committed, breaker: CircuitBreaker,
                idle_s: float) -> AsyncGenerator[chat_pb2.EventBatch, None]:
    """The committed batch, then one batch per network read until the turn finishes."""
    reader = committed.reader
    clean = reader is None
    try:
        yield chat_pb2.EventBatch(events=committed.events)
        if reader is None:
            return
        while not reader.done:
            events = await _next_events(reader, committed.entry, idle_s)
            at = first_error(events)
            if at >= 0:
                breaker.record_failure()
                yield chat_pb2.EventBatch(events=events[:at + 1])
                return
            if events:
                yield chat_pb2.EventBatch(events=events)
        if not reader.saw_finish:
            yield failures.error_batch(failures.error(
                502, f"the stream from provider '{committed.entry.name}' ended before the "
                     f"turn finished", committed.entry, type="api_error"))
            return
        clean = True
    finally:
        if reader is not None:
            reader.close()
        if clean:
            committed.response.release()
        else:
            committed.response.close()   # drop the upstream connection at once


async def _next_events(reader: StreamReader, entry: ProviderEntry,
                       idle_s: float) -> list[chat_pb2.StreamEvent]:
    """The next read's events; a read that fails gives a single error event instead."""
    try:
        return await reader.read(idle_s)
    except TimeoutError:
        err = failures.timeout(entry, f"went silent for {idle_s:g} s mid-stream")
    except HttpError as exc:
        err = failures.broken(entry, exc).error
    except Exception as exc:  # noqa: BLE001 - a decoder failure must still end the stream cleanly
        err = failures.undecodable(entry, exc).error
    return [chat_pb2.StreamEvent(error=err)]
