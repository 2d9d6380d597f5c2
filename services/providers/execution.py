"""Executing a route plan: try its targets in order, retry transient failures, and stream the
upstream's decoded events back as EventBatches (one per network read).

One attempt is `attempt.Attempt`; what follows the commit point is `relay.relay`; the errors
are made in `failures`.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from switchyard.common import service_metrics
from switchyard.common.config.model import ProviderEntry
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, providers_pb2, router_pb2
from switchyard.common.sse_parser import SSEParser
from switchyard.common.telemetry import genai, propagation, tracer
from switchyard.providers import adapters, failures
from switchyard.providers.adapters.base import UpstreamCodec
from switchyard.providers.attempt import Attempt, Call, Committed, Deadline
from switchyard.providers.breaker import BreakerBoard, CircuitBreaker
from switchyard.providers.failures import AttemptFailed, error_batch
from switchyard.providers.http import ClientPool
from switchyard.providers.ordering import order_targets
from switchyard.providers.relay import relay, stamp_start
from switchyard.providers.retry import RetryPolicy
from switchyard.providers.secrets import Secrets, entry_secrets
from switchyard.providers.stream_reader import EventParser

if TYPE_CHECKING:   # the API is imported where a span is made: tracing off never loads it
    from opentelemetry.context import Context
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

log = logging.getLogger(__name__)

CodecLookup = Callable[[ProviderEntry], UpstreamCodec]
EntryLookup = Callable[[str], "ProviderEntry | None"]


def load_adapter(entry: ProviderEntry) -> UpstreamCodec:
    """The upstream codec module for the entry's interface."""
    try:
        return adapters.for_interface(entry.interface)
    except ValueError:
        raise GatewayError(500, f"provider '{entry.name}': no codec for interface "
                                f"'{entry.interface}'", provider=entry.name) from None


def target_key(target: router_pb2.Target) -> tuple[str, str]:
    """Breakers are per target: (provider entry, upstream model)."""
    return (target.provider, target.model)


class _PlanFailed(Exception):
    """The plan is over without a committed attempt: answer with this error."""

    def __init__(self, error: chat_pb2.Error) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class _Run:
    """One generate call's progress across the plan's targets."""
    gen: providers_pb2.GenerateRequest
    deadline: Deadline
    attempts: int = 0
    last: chat_pb2.Error | None = None   # the latest failure, answered if nothing commits
    span: Span | None = None             # the execution span (tracing on): attempts' parent
    model: str = ""                      # the current target's upstream model


class Executor:
    """Runs GenerateRequests against upstreams; one per process, shared by every call."""

    def __init__(self, lookup: EntryLookup, pool: ClientPool, *, default_timeout_s: float = 30.0,
                 breakers: BreakerBoard | None = None, retry: RetryPolicy | None = None,
                 adapters: CodecLookup = load_adapter,
                 sse_parser: Callable[[], EventParser] = SSEParser,
                 rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 secrets: Secrets | None = None) -> None:
        self.lookup = lookup
        self.pool = pool
        self.default_timeout_s = default_timeout_s
        self.breakers = breakers or BreakerBoard()
        self.retry = retry or RetryPolicy()
        self.adapters = adapters
        self.sse_parser = sse_parser
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.clock = clock
        self.secrets = secrets or Secrets()   # the config's; a request adds its own key

    async def generate(self, gen: providers_pb2.GenerateRequest
                       ) -> AsyncGenerator[chat_pb2.EventBatch, None]:
        """Stream the plan's answer: `start` then content, or a single `error` batch.

        This is where batches leave the executor, so every error is scrubbed of secrets here.
        An error ends the stream, so it is always the last event of its batch (the committed
        batch holds none: `attempt` raises on one; `relay` cuts a batch after one); only that
        event is looked at, content events are not walked again.
        """
        # Only under a sampled request (propagation.is_sampled): nothing below it is recorded.
        span = (_execution_span(gen) if tracer.ENABLED and propagation.is_sampled(gen.traceparent)
                else None)
        try:
            try:
                committed, breaker = await self._commit(gen, span)
            except _PlanFailed as failed:
                err = self._scrub(failed.error, gen)
                if span is not None:
                    _span_error(span, err)
                yield error_batch(err)
                return
            idle_s = self.pool.timeouts(committed.entry).idle_s
            async with contextlib.aclosing(relay(committed, breaker, idle_s)) as batches:
                async for batch in batches:
                    events = batch.events
                    if events and events[-1].HasField("error"):
                        self._scrub(events[-1].error, gen)
                        if span is not None:
                            _span_error(span, events[-1].error)
                    elif span is not None and events and events[-1].HasField("finish"):
                        _span_finish(span, events[-1].finish)
                    yield batch
        finally:
            if span is not None:
                span.end()

    def _scrub(self, err: chat_pb2.Error, gen: providers_pb2.GenerateRequest) -> chat_pb2.Error:
        """`err` without any secret: the configured ones, the request's key, and those of the
        plan's entries (an Executor built without a config still knows those)."""
        extra: list[str | None] = [gen.client_api_key]
        for target in gen.plan.targets:
            entry = self.lookup(target.provider)
            if entry is not None:
                extra.extend(entry_secrets(entry))
        return self.secrets.scrub(err, extra)

    async def _commit(self, gen: providers_pb2.GenerateRequest, span: Span | None = None
                      ) -> tuple[Committed, CircuitBreaker]:
        """Try the plan's targets in order until an attempt commits (else _PlanFailed)."""
        plan = gen.plan
        if not plan.targets:
            raise _PlanFailed(failures.error(
                500, f"route plan for '{plan.name}' has no targets", None))
        budget_s = plan.timeout_s if plan.timeout_s > 0 else self.default_timeout_s
        run = _Run(gen, Deadline(budget_s, self.clock), span=span)
        order = order_targets(plan, lambda t: self.breakers.admits(target_key(t)), self.rng)
        for target in order:
            entry = self.lookup(target.provider)
            if entry is None:
                run.last = failures.error(
                    500, f"provider entry '{target.provider}' is not configured", None)
                run.last.provider = target.provider
                continue
            call = self._encode(gen, entry, target)
            breaker = self.breakers.get(target_key(target))
            run.model = target.model
            committed = await self._attempts(run, call, breaker)
            if committed is not None:
                stamp_start(committed.events, entry, target, run.attempts, call.dropped,
                            committed.upstream_ms)
                if span is not None:
                    _span_committed(span, entry, target, order, run.attempts, committed)
                return committed, breaker
        raise _PlanFailed(_exhausted(run.last, plan.name, len(order)))

    def _encode(self, gen: providers_pb2.GenerateRequest, entry: ProviderEntry,
                target: router_pb2.Target) -> Call:
        """The target's request; a codec that cannot encode it ends the plan (no retry helps)."""
        secrets = (*entry_secrets(entry), gen.client_api_key)
        try:
            codec = adapters.for_model(self.adapters(entry), entry, target.model)
            body, dropped = codec.encode_request(gen.request, entry, target.model)
            url = codec.endpoint_url(entry, target.model, stream=gen.request.stream)
            headers = codec.build_headers(entry, gen.client_api_key, dict(gen.forward_headers))
        except GatewayError as exc:
            err = exc.to_proto()
            err.provider = err.provider or entry.name
            raise _PlanFailed(self.secrets.scrub(err, secrets)) from None
        except Exception as exc:   # a codec bug must still answer in the event grammar
            log.exception("request %s: provider %s: encoding the request failed",
                          gen.request_id, entry.name)
            raise _PlanFailed(failures.error(
                500, f"provider '{entry.name}': the gateway could not encode the request "
                     f"({type(exc).__name__})", entry)) from None
        if not isinstance(body, (bytes, bytearray)):   # a codec outside the type checker
            body = orjson.dumps(body)
        return Call(entry, codec, url, headers, body, gen.request.stream, dropped, secrets)

    async def _attempts(self, run: _Run, call: Call,
                        breaker: CircuitBreaker) -> Committed | None:
        """Attempt one target up to max_retries + 1 times; None moves on to the next target."""
        for retry in range(max(run.gen.plan.max_retries, 0) + 1):
            if run.deadline.expired():
                raise _PlanFailed(run.last or run.deadline.spent(call.entry))
            run.attempts += 1
            breaker.begin()
            span = _attempt_span(run, call) if run.span is not None else None
            try:
                committed = await Attempt(
                    call, self.pool, run.deadline, self.sse_parser,
                    _context_of(span) if span is not None else None).run()
            except AttemptFailed as failed:
                if span is not None:
                    _span_error(span, failed.error, outcome=str(failed.error.http_status))
                    span.end()
                delay = self._after_failure(run, call, breaker, failed, retry)
                if delay is None:
                    return None
                await self.sleep(delay)
                continue
            except BaseException:
                breaker.release()   # cancelled: no outcome, let another probe through
                if span is not None:
                    span.set_attribute(genai.OUTCOME, "cancelled")
                    span.end()
                raise
            if span is not None:
                span.set_attribute(genai.OUTCOME, "ok")
                span.end()
            breaker.record_success()
            if (metrics := service_metrics.METRICS) is not None:
                metrics.child(metrics.UPSTREAM_ATTEMPTS, call.entry.name, "ok").inc()
                metrics.child(metrics.UPSTREAM_FIRST_BYTE, call.entry.name).observe(
                    committed.upstream_ms / 1000.0)
            return committed
        return None

    def _after_failure(self, run: _Run, call: Call, breaker: CircuitBreaker,
                       failed: AttemptFailed, retry: int) -> float | None:
        """Record a failed attempt; the wait before retrying the target, or None to move on."""
        last = run.last = self.secrets.scrub(failed.error, call.secrets)
        if failed.retryable or last.http_status >= 500:
            breaker.record_failure()
        else:
            breaker.record_success()   # the upstream is alive; the request is wrong
        log.warning("request %s: provider %s attempt %d failed: %d %s", run.gen.request_id,
                    call.entry.name, run.attempts, last.http_status, last.type)
        if (metrics := service_metrics.METRICS) is not None:
            metrics.child(metrics.UPSTREAM_ATTEMPTS, call.entry.name, str(last.http_status)).inc()
        if failed.final or (not failed.retryable and 400 <= last.http_status < 500):
            raise _PlanFailed(last)   # out of time, or a request no upstream would accept
        if not failed.retryable or retry >= run.gen.plan.max_retries:
            return None
        delay = (failed.retry_after if failed.retry_after is not None
                 else self.retry.backoff(retry, self.rng))
        if delay >= run.deadline.remaining():
            return None   # waiting would outlast the budget: try the next target now
        return delay


def _context_of(span: Span) -> Context:
    from opentelemetry.trace import set_span_in_context
    return set_span_in_context(span)


def _execution_span(gen: providers_pb2.GenerateRequest) -> Span:
    """The span of one generate call, a child of the edge's request span."""
    from opentelemetry.trace import SpanKind
    return tracer.TRACER.start_span(
        f"execute {gen.request.model}", context=propagation.context_from(gen.traceparent),
        kind=SpanKind.SERVER,
        attributes={genai.OPERATION: "chat", genai.REQUEST_MODEL: gen.request.model,
                    genai.REQUEST_ID: gen.request_id, genai.REQUEST_STREAM: gen.request.stream,
                    "switchyard.plan": gen.plan.name})


def _attempt_span(run: _Run, call: Call) -> Span:
    """One upstream attempt, a sibling of the plan's other attempts (retries, fallbacks)."""
    from opentelemetry.trace import SpanKind
    entry = call.entry
    return tracer.TRACER.start_span(
        f"chat {run.model}", context=_context_of(run.span) if run.span else None,
        kind=SpanKind.CLIENT,
        attributes={genai.OPERATION: "chat", genai.PROVIDER: genai.provider_name(entry.provider),
                    genai.REQUEST_MODEL: run.model, genai.UPSTREAM_ENTRY: entry.name,
                    genai.ATTEMPT: run.attempts, genai.REQUEST_STREAM: call.stream})


def _span_committed(span: Span, entry: ProviderEntry, target: router_pb2.Target,
                    order: list[router_pb2.Target], attempts: int, committed: Committed) -> None:
    start = committed.events[0].start
    # One call: on the request path each one is a cost. A fallback: the answer comes from
    # another target than the first one tried.
    attributes: dict[str, AttributeValue] = {
        genai.PROVIDER: genai.provider_name(entry.provider), genai.UPSTREAM_ENTRY: entry.name,
        genai.RESPONSE_MODEL: start.model or target.model, genai.ATTEMPTS: attempts,
        genai.FALLBACK: target_key(target) != target_key(order[0])}
    if start.dropped_params:
        attributes[genai.DROPPED_PARAMS] = list(start.dropped_params)
    attributes["switchyard.upstream_first_content_ms"] = round(committed.upstream_ms, 3)
    span.set_attributes(attributes)
    last = committed.events[-1]
    if last.HasField("finish"):
        _span_finish(span, last.finish)


def _span_finish(span: Span, finish: chat_pb2.StreamFinish) -> None:
    genai.set_usage(span, finish.usage)
    if finish.stop_reason:
        span.set_attribute(genai.FINISH_REASONS, [genai.finish_reason(finish.stop_reason)])


def _span_error(span: Span, err: chat_pb2.Error, outcome: str = "") -> None:
    """An error on a span: its type and status, never its message (it may echo input)."""
    from opentelemetry.trace import Status, StatusCode
    span.set_status(Status(StatusCode.ERROR, err.type or str(err.http_status)))
    span.set_attribute("error.type", err.type or str(err.http_status))
    if err.http_status:
        span.set_attribute("http.response.status_code", err.http_status)
    if outcome:
        span.set_attribute(genai.OUTCOME, outcome)


def _exhausted(last: chat_pb2.Error | None, plan_name: str, targets: int) -> chat_pb2.Error:
    """The answer when every target failed: the last failure, saying all were tried."""
    if last is None:
        return failures.error(502, f"no upstream could serve '{plan_name}'", None)
    if targets > 1:
        last.message = f"{last.message} (all {targets} targets for '{plan_name}' failed)"
    return last
