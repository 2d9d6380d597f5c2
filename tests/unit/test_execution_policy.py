"""Pure parts of plan execution: breakers, target order, retry timing, token estimates."""
from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from switchyard.common.canonical.token_estimate import estimate_tokens
from switchyard.common.config.model import ProviderEntry
from switchyard.common.http_headers import retry_after_seconds
from switchyard.common.proto import chat_pb2, router_pb2
from switchyard.providers.breaker import CLOSED, HALF_OPEN, OPEN, BreakerBoard, CircuitBreaker
from switchyard.providers.http import default_timeouts
from switchyard.providers.ordering import order_targets
from switchyard.providers.relay import stamp_start
from switchyard.providers.retry import RetryPolicy, is_retryable
from switchyard.providers.stream_reader import stream_error_payload
from switchyard.providers.tokens import count_tokens_url


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_five_consecutive_failures():
    clock = FakeClock()
    b = CircuitBreaker(clock=clock)
    for _ in range(4):
        b.record_failure()
    assert b.state == CLOSED and b.admits()
    b.record_success()          # a success resets the run
    for _ in range(4):
        b.record_failure()
    assert b.state == CLOSED
    b.record_failure()
    assert b.state == OPEN and not b.admits()


def test_breaker_half_open_admits_one_probe_then_closes_or_reopens():
    clock = FakeClock()
    b = CircuitBreaker(threshold=5, cooldown_s=30.0, clock=clock)
    for _ in range(5):
        b.record_failure()
    clock.now += 29.9
    assert b.state == OPEN
    clock.now += 0.2
    assert b.state == HALF_OPEN and b.admits()
    b.begin()
    assert not b.admits()       # one probe at a time
    b.record_failure()          # probe failed: open again for a full cool-down
    assert b.state == OPEN
    clock.now += 30.1
    b.begin()
    b.release()                 # cancelled probe: another may go
    assert b.admits()
    b.begin()
    b.record_success()
    assert b.state == CLOSED and b.failures == 0


def test_board_keeps_one_breaker_per_key():
    board = BreakerBoard(clock=FakeClock())
    assert board.admits(("a", "m"))
    assert board.get(("a", "m")) is board.get(("a", "m"))
    assert board.get(("a", "m")) is not board.get(("a", "n"))


def _plan(weights: list[int], fallbacks: int = 0) -> router_pb2.RoutePlan:
    targets = [router_pb2.Target(provider=f"w{i}", model="m", weight=w) for i, w in enumerate(weights)]
    targets += [router_pb2.Target(provider=f"f{i}", model="m") for i in range(fallbacks)]
    return router_pb2.RoutePlan(targets=targets, weighted_count=len(weights))


def test_weighted_first_choice_follows_weights():
    rng = random.Random(7)
    plan = _plan([70, 20, 10], fallbacks=1)
    firsts = Counter()
    for _ in range(1000):
        order = order_targets(plan, lambda t: True, rng)
        assert sorted(t.provider for t in order[:3]) == ["w0", "w1", "w2"]
        assert order[3].provider == "f0"
        firsts[order[0].provider] += 1
    assert abs(firsts["w0"] / 1000 - 0.70) < 0.05
    assert abs(firsts["w1"] / 1000 - 0.20) < 0.04
    assert abs(firsts["w2"] / 1000 - 0.10) < 0.03


def test_rest_of_group_keeps_plan_order_and_zero_weights_are_uniform():
    rng = random.Random(1)
    plan = _plan([0, 0])
    firsts = Counter(order_targets(plan, lambda t: True, rng)[0].provider for _ in range(400))
    assert 150 < firsts["w0"] < 250
    order = order_targets(_plan([1, 0, 0]), lambda t: True, rng)
    assert [t.provider for t in order] == ["w0", "w1", "w2"]


def test_open_targets_are_skipped_unless_all_are_open():
    plan = _plan([50, 50], fallbacks=2)
    order = order_targets(plan, lambda t: t.provider not in ("w0", "f0"), random.Random(3))
    assert [t.provider for t in order] == ["w1", "f1"]
    order = order_targets(plan, lambda t: False, random.Random(3))
    assert sorted(t.provider for t in order) == ["f0", "f1", "w0", "w1"]


def test_plain_fallback_plan_keeps_its_order():
    plan = router_pb2.RoutePlan(targets=[router_pb2.Target(provider=p) for p in "abc"])
    assert [t.provider for t in order_targets(plan, lambda t: True)] == ["a", "b", "c"]


def test_backoff_is_full_jitter_under_a_capped_exponential():
    policy = RetryPolicy(base_s=0.25, cap_s=8.0)
    rng = random.Random(5)
    for retry, ceiling in [(0, 0.25), (1, 0.5), (3, 2.0), (10, 8.0)]:
        delays = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8      # jitter spans the whole range


def test_retryable_statuses():
    for status in (429, 500, 502, 503, 504, 529):
        assert is_retryable(status, "")
    for status in (400, 401, 403, 404, 413, 422, 501):
        assert not is_retryable(status, "")
    assert is_retryable(502, "upstream_unreachable") and is_retryable(0, "timeout")


def test_retry_after_headers():
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 15 < retry_after_seconds({"retry-after": later}) <= 20


def test_default_timeouts_follow_the_listener():
    t = default_timeouts(30.0)
    assert (t.connect_s, t.first_byte_s, t.idle_s) == (10.0, 30.0, 30.0)
    assert default_timeouts(4.0).connect_s == 4.0


def test_stream_error_payloads_are_recognised_cheaply():
    assert stream_error_payload("error", b'{"type":"error","error":{"type":"overloaded_error"}}')
    assert stream_error_payload(None, b'{"error":{"message":"x"}}')
    assert stream_error_payload(None, b'{"choices":[{"delta":{"content":"\\"error\\""}}]}') is None
    assert stream_error_payload(None, b'{"choices":[],"error":null}') is None
    assert stream_error_payload("message_delta", b'{"type":"message_delta"}') is None


def test_start_is_moved_first_and_stamped():
    entry = ProviderEntry(name="p", provider="openai", model="m", interface="openai",
                          endpoint="http://x/v1/chat/completions", auth="bearer")
    target = router_pb2.Target(provider="p", model="gpt-x")
    events = [chat_pb2.StreamEvent(block_start=chat_pb2.BlockStart(index=0))]
    stamp_start(events, entry, target, 3, ["seed", "n"], 12.5)
    start = events[0].start
    assert (start.provider, start.attempts, start.model, start.upstream_ms) == ("p", 3, "gpt-x", 12.5)
    assert list(start.dropped_params) == ["seed", "n"]
    events = [chat_pb2.StreamEvent(block_start=chat_pb2.BlockStart(index=0)),
              chat_pb2.StreamEvent(start=chat_pb2.StreamStart(id="r", dropped_params=["n"]))]
    stamp_start(events, entry, target, 1, ["n"], 1.0)
    assert events[0].start.id == "r" and list(events[0].start.dropped_params) == ["n"]


def test_estimate_is_about_chars_over_four():
    text = "x" * 400
    req = chat_pb2.ChatRequest(messages=[chat_pb2.Message(
        role=chat_pb2.ROLE_USER, parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text=text))])])
    assert 100 <= estimate_tokens(req) <= 110
    req.tools.add(name="t", parameters_json="y" * 399)
    assert 200 <= estimate_tokens(req) <= 210


def test_count_tokens_url_keeps_query():
    assert count_tokens_url("https://api.anthropic.com/v1/messages") == \
        "https://api.anthropic.com/v1/messages/count_tokens"
    assert count_tokens_url("http://h:1/v1/messages?beta=true") == \
        "http://h:1/v1/messages/count_tokens?beta=true"
