"""The limits' pieces on their own: the `redis:`, `ratelimits:` and tokens-per-minute config,
the in-process token buckets, Plano's selector matching, the token reservation and one
request's admit/settle cycle."""
from __future__ import annotations

import hashlib

import pytest
import yaml

from switchyard.common.config import parse_config
from switchyard.common.config.fields import ConfigError, Report
from switchyard.common.config.model import ApiKey, RateLimitRule, Security
from switchyard.common.config.ratelimits import parse_ratelimits
from switchyard.common.config.redis import parse_redis, redacted
from switchyard.common.config.security import parse_security
from switchyard.common.errors import GatewayError
from switchyard.common.proto import chat_pb2, router_pb2
from switchyard.edge import limits
from switchyard.edge.limits.base import REQUESTS, Bucket, Charge, Decision
from switchyard.edge.limits.memory import SWEEP_ABOVE, MemoryLimiter
from switchyard.edge.limits.policy import Limits, Pending
from switchyard.edge.limits.rules import RuleSet, model_names, reservation_size, used_tokens

BASE = """
version: v0.3.0
listeners: [{type: model, name: m, address: 127.0.0.1, port: 12000}]
model_providers:
  - {model: openai/gpt-4o-mini, access_key: sk-x, default: true}
"""


def load(extra: str):
    return parse_config(yaml.safe_load(BASE + extra), "cfg.yaml")


def errors_of(extra: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(extra)
    return info.value.errors


# ---- config ---------------------------------------------------------------------------------

def test_redis_section_with_env_password_never_shown(monkeypatch):
    monkeypatch.setenv("REDIS_PASSWORD", "hunter2-secret")
    cfg = load("redis: {url: 'redis://:${REDIS_PASSWORD}@cache:6380/2', on_unavailable: deny, "
               "timeout: 100ms}\n")
    r = cfg.security.redis
    assert r is not None
    assert r.url == "redis://:hunter2-secret@cache:6380/2"
    assert r.display == "redis://:***@cache:6380/2"
    assert (r.on_unavailable, r.timeout_s) == ("deny", 0.1)
    assert "hunter2" not in repr(cfg.security) and "hunter2" not in repr(r)


def test_redis_defaults_and_absence():
    assert load("").security.redis is None
    r = load("redis: {url: redis://localhost}\n").security.redis
    assert r is not None and (r.on_unavailable, r.timeout_s) == ("allow", 0.25)
    assert load("redis: {url: 'unix:///run/redis.sock'}\n").security.redis is not None


@pytest.mark.parametrize("section, fragment", [
    ("redis: {on_unavailable: allow}", "url is required"),
    ("redis: {url: 'http://:pw-secret@host:6379'}", "scheme must be redis://"),
    ("redis: {url: 'redis://:pw-secret@host:99999/0'}", "port must be"),
    ("redis: {url: 'redis://:pw-secret@host:6379/zero'}", "database number"),
    ("redis: {url: 'redis://:pw-secret@/0'}", "no host"),
    ("redis: {url: redis://h, on_unavailable: maybe}", "allow or deny"),
    ("redis: {url: redis://h, timeout: soon}", "timeout must be a positive duration"),
    ("redis: {url: redis://h, pasword: x}", "unknown key 'pasword'"),
    ("redis: redis://h", "must be a mapping"),
    ("redis: {url: '${NO_SUCH_REDIS_URL_VAR}'}", "NO_SUCH_REDIS_URL_VAR"),
])
def test_redis_errors_name_the_fix_and_hide_the_password(section, fragment):
    errors = errors_of(section + "\n")
    assert any(fragment in e and e.startswith("cfg.yaml: redis") for e in errors), errors
    assert not any("pw-secret" in e for e in errors)


def test_redacted_drops_password_and_query():
    assert redacted("redis://user:pw@h:1/0?password=pw2") == "redis://user:***@h:1/0"
    assert redacted("rediss://h:6379") == "rediss://h:6379"


def test_ratelimits_section_parsed():
    cfg = load("""
ratelimits:
  - model: gpt-4o-mini
    selector: {key: X-Org-Id, value: acme}
    limit: {tokens: 1000, unit: hour}
  - model: gpt-4o-mini
    selector: {key: x-org-id}
    limit: {tokens: 50, unit: second}
  - model: gpt-4o-mini
    selector: {key: x-team, value: 7}
    limit: {tokens: 5, unit: day}
""")
    a, b, c = cfg.security.ratelimits
    assert a == RateLimitRule("gpt-4o-mini", "x-org-id", "acme", 1000, "hour", 3600.0)
    assert (b.value, b.unit_s) == (None, 1.0)
    assert (c.value, c.unit_s) == ("7", 86400.0)


@pytest.mark.parametrize("section, fragment", [
    ("ratelimits: {model: x}", "must be a list"),
    ("ratelimits: [{selector: {key: a, value: b}, limit: {tokens: 1, unit: minute}}]",
     "model is required"),
    ("ratelimits: [{model: m, limit: {tokens: 1, unit: minute}}]", "selector: is required"),
    ("ratelimits: [{model: m, selector: {value: b}, limit: {tokens: 1, unit: minute}}]",
     "key is required"),
    ("ratelimits: [{model: m, selector: {key: a, value: b}, limit: {tokens: 0, unit: minute}}]",
     "tokens must be a positive whole number"),
    ("ratelimits: [{model: m, selector: {key: a, value: b}, limit: {tokens: 5, unit: week}}]",
     "unit must be one of second, minute, hour, day"),
    ("ratelimits: [{model: m, selector: {key: a, valu: b}, limit: {tokens: 5, unit: hour}}]",
     "did you mean 'value'"),
    ("ratelimits: [{model: m, selector: {key: a, value: b}, limit: {tokens: 5, unit: hour}},"
     " {model: m, selector: {key: A, value: b}, limit: {tokens: 9, unit: hour}}]",
     "repeats ratelimits[0]"),
])
def test_ratelimits_errors(section, fragment):
    errors = errors_of(section + "\n")
    assert any(fragment in e for e in errors), errors


def test_ratelimits_report_each_entry_once():
    rep = Report("f")
    rules = parse_ratelimits(rep, [
        {"model": "m", "selector": {"key": "k", "value": "v"}, "limit": {"tokens": 1,
                                                                       "unit": "minute"}},
        {"model": "", "selector": None, "limit": {"tokens": -1, "unit": "x"}}])
    assert len(rules) == 1
    assert [e.split(":")[1].strip().split(".")[0] for e in rep.errors] == ["ratelimits[1]"] * 4
    assert parse_redis(Report("f"), None) is None


def test_tokens_per_minute_default_and_per_key():
    errors: list[str] = []
    sec = parse_security({"keys": [{"key": "k1", "tenant": "a", "tokens_per_minute": 500},
                                   {"key": "k2", "tenant": "b"}]},
                         {"tokens_per_minute": 9000}, errors, lambda w, f, v: v)
    assert errors == []
    assert sec.tokens_per_minute == 9000
    assert [k.tokens_per_minute for k in sec.keys] == [500, None]
    parse_security({"keys": [{"key": "k", "tenant": "a", "tokens_per_minute": 0}]},
                   {"tokens_per_minute": "lots"}, errors, lambda w, f, v: v)
    assert any("`tokens_per_minute` must be a positive integer" in e for e in errors)
    assert any("limits.tokens_per_minute" in e for e in errors)


# ---- the in-process buckets ----------------------------------------------------------------

def bucket(key: str = "b", capacity: float = 10, period: float = 60, kind: str = REQUESTS):
    return Bucket(key, capacity, period, f"{capacity:g} per {period:g}s", kind)


def test_memory_buckets_take_all_or_nothing_and_refill():
    now = [0.0]
    lim = MemoryLimiter(clock=lambda: now[0])
    small, big = bucket("small", 2), bucket("big", 100)
    assert lim.take([Charge(small, 1), Charge(big, 50)]).allowed
    assert lim.take([Charge(small, 1), Charge(big, 50)]).allowed
    refused = lim.take([Charge(small, 1), Charge(big, 1)])
    assert not refused.allowed and refused.limit == small
    assert refused.retry_after == pytest.approx(30.0)      # 1 of 2 per minute
    assert lim.levels["big"][0] == 0                        # nothing taken from big either
    now[0] = 30.0
    assert lim.take([Charge(small, 1)]).allowed


def test_memory_settle_gives_back_caps_at_capacity_and_can_leave_debt():
    now = [0.0]
    lim = MemoryLimiter(clock=lambda: now[0])
    b = bucket(capacity=100, period=100)       # 1 a second
    assert lim.take([Charge(b, 80)]).allowed
    lim.settle([Charge(b, 500)])
    assert lim.levels["b"][0] == 100
    assert lim.take([Charge(b, 100)]).allowed
    lim.settle([Charge(b, -40)])               # used 40 more than reserved
    d = lim.take([Charge(b, 10)])
    assert not d.allowed and d.retry_after == pytest.approx(50.0)


def test_memory_forgets_full_buckets():
    now = [0.0]
    lim = MemoryLimiter(clock=lambda: now[0])
    for i in range(SWEEP_ABOVE):
        lim.take([Charge(bucket(f"k{i}", capacity=1, period=1), 1)])
    now[0] = 5.0                               # every bucket is full again
    lim.take([Charge(bucket("new", capacity=1, period=1), 1)])
    assert set(lim.levels) == {"new"}


def test_rate_limiter_kept_for_old_callers():
    from switchyard.edge.guard import RateLimiter
    now = [0.0]
    rl = RateLimiter(2, clock=lambda: now[0])
    assert rl.take("k") == 0 and rl.take("k") == 0
    assert rl.take("k") == pytest.approx(30.0)


# ---- what a request draws on ---------------------------------------------------------------

def rule(model="gpt-4o-mini", header="x-org", value=None, tokens=100, unit="minute"):
    return RateLimitRule(model, header, value, tokens, unit, {"second": 1.0, "minute": 60.0}[unit])


def test_selector_exact_value_beats_any_value_and_values_count_apart():
    generic, exact = rule(tokens=100), rule(value="acme", tokens=7, unit="second")
    rules = RuleSet([generic, exact])
    names = {"gpt-4o-mini"}
    (b,) = rules.buckets(names, {"x-org": "acme"})
    assert (b.capacity, b.period_s, b.kind) == (7.0, 1.0, "ratelimits")
    (one,) = rules.buckets(names, {"x-org": "globex"})
    (two,) = rules.buckets(names, {"x-org": "initech"})
    assert one.capacity == two.capacity == 100 and one.key != two.key
    assert "globex" not in one.key                      # values are hashed, never keys
    assert rules.buckets(names, {}) == []               # no header: no limit
    assert rules.buckets({"gpt-4o"}, {"x-org": "acme"}) == []
    # The order of entries does not matter, and other headers' entries apply as well.
    both = RuleSet([exact, generic, rule(header="x-user", tokens=3)])
    got = both.buckets(names, {"x-org": "acme", "x-user": "u1"})
    assert sorted(b.capacity for b in got) == [3.0, 7.0]
    assert RuleSet([exact]).buckets(names, {"x-org": "acme"})[0].key == b.key  # stable id


def test_model_names_cover_alias_entry_and_upstream_names():
    req = chat_pb2.ChatRequest(model="fast-model")
    plan = router_pb2.RoutePlan(name="fast-model", targets=[
        router_pb2.Target(provider="anthropic/*", model="claude-3-5-haiku"),
        router_pb2.Target(provider="openai/gpt-4o", model="gpt-4o")])
    names = model_names(req, plan)
    assert {"fast-model", "claude-3-5-haiku", "anthropic/claude-3-5-haiku"} <= names
    assert "gpt-4o" not in names                        # a fallback is not the route's model


def test_reservation_is_input_estimate_plus_output_allowed():
    req = chat_pb2.ChatRequest(model="gpt-4o-mini", max_tokens=100, messages=[
        chat_pb2.Message(role=chat_pb2.ROLE_USER,
                         parts=[chat_pb2.ContentPart(text=chat_pb2.TextPart(text="x" * 400))])])
    plan = router_pb2.RoutePlan(name="gpt-4o-mini", targets=[
        router_pb2.Target(provider="openai/gpt-4o-mini", model="gpt-4o-mini")])
    assert reservation_size(req, plan) == 100 + 100 + 4      # 400 chars, 1 message
    req.ClearField("max_tokens")
    assert reservation_size(req, plan) == 104 + 4096         # the default output limit
    usage = chat_pb2.Usage(input_tokens=5, output_tokens=7, cache_read_tokens=11,
                           cache_creation_tokens=13, reasoning_tokens=3)
    assert used_tokens(usage) == 36                          # reasoning is part of output


# ---- one request's cycle -------------------------------------------------------------------

def key(rpm=None, tpm=None) -> ApiKey:
    return ApiKey(sha256=hashlib.sha256(b"k").digest(), tenant="t", requests_per_minute=rpm,
                  tokens_per_minute=tpm)


def setup(**security):
    now = [0.0]
    store = MemoryLimiter(clock=lambda: now[0])
    lim = Limits(Security(**security), store)
    return lim, store


REQ = chat_pb2.ChatRequest(model="gpt-4o-mini", max_tokens=40)
PLAN = router_pb2.RoutePlan(name="gpt-4o-mini", targets=[
    router_pb2.Target(provider="openai/gpt-4o-mini", model="gpt-4o-mini")])


def level(store: MemoryLimiter, prefix: str) -> float:
    (found,) = [v[0] for k, v in store.levels.items() if k.startswith(prefix)]
    return found


async def test_reservation_settled_to_usage():
    lim, store = setup(keys=(key(tpm=100),))
    assert lim.counts_tokens
    p = Pending(lim, lim.caller(key(tpm=100), "-"))
    await p.admit(REQ, PLAN, {}, reserve=True)
    assert level(store, "tk:") == 60                     # 40 output + 0 input reserved
    p.used, p.status = 15, 200
    p.finish()
    assert level(store, "tk:") == 85


async def test_failed_answer_gives_everything_back_and_cut_stream_keeps_it():
    lim, store = setup(tokens_per_minute=100)
    failed = Pending(lim, lim.caller(None, "10.0.0.1"))
    await failed.admit(REQ, PLAN, {}, reserve=True)
    failed.status = 502
    failed.finish()
    assert level(store, "tk:ip:10.0.0.1") == 100
    cut = Pending(lim, lim.caller(None, "10.0.0.1"))
    await cut.admit(REQ, PLAN, {}, reserve=True)
    cut.status = 200                                     # streamed, no final usage
    cut.finish()
    assert level(store, "tk:ip:10.0.0.1") == 60


async def test_refused_with_429_naming_the_limit_and_never_reached_admit_still_counts():
    lim, store = setup(keys=(key(rpm=2, tpm=1000),))
    caller = lim.caller(key(rpm=2, tpm=1000), "-")
    bad_body = Pending(lim, caller)
    bad_body.status = 400
    bad_body.finish()                                    # counted though never admitted
    await Pending(lim, caller).admit(REQ, PLAN, {}, reserve=True)
    with pytest.raises(GatewayError) as info:
        await Pending(lim, caller).admit(REQ, PLAN, {}, reserve=True)
    err = info.value
    assert (err.http_status, err.type) == (429, "rate_limit")
    assert "2 requests per minute for this API key" in err.message
    assert err.retry_after == pytest.approx(30.0)


async def test_count_only_admit_reserves_no_tokens():
    lim, store = setup(tokens_per_minute=100, requests_per_minute=10)
    p = Pending(lim, lim.caller(None, "a"))
    await p.admit(REQ, PLAN, {}, reserve=False)
    assert level(store, "rq:") == 9 and not any(k.startswith("tk:") for k in store.levels)


async def test_a_request_larger_than_the_budget_runs_once_it_is_full():
    lim, store = setup(tokens_per_minute=10)
    p = Pending(lim, lim.caller(None, "a"))
    await p.admit(REQ, PLAN, {}, reserve=True)           # 40 wanted, 10 held
    p.used = 40
    p.finish()
    assert level(store, "tk:") == -30                    # in debt for the difference
    with pytest.raises(GatewayError) as info:
        await Pending(lim, lim.caller(None, "a")).admit(REQ, PLAN, {}, reserve=True)
    assert info.value.retry_after == pytest.approx(240.0)  # 40 back to full at 10/min


def test_no_limits_no_limiter_and_policy_errors():
    assert limits.build(Security()) is None
    assert limits.build(Security(keys=(key(),))) is None
    assert isinstance(limits.build(Security(tokens_per_minute=5)).limiter, MemoryLimiter)
    down = limits.refusal(Decision(False, 1.0, None, unavailable=True))
    assert down is not None and (down.http_status, down.type) == (503, "unavailable")
    assert limits.refusal(Decision(True, unavailable=True)) is None
