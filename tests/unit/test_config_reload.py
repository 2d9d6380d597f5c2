"""The config watch every service runs (common/config/reload.py) over real files: what counts
as a change, what an invalid file does, Kubernetes' symlink swap, the `.env`, SIGHUP, the
process record `switchyard reload` reads; and the edge's part (edge/reload.py): keys and
limits swapped together, the limits' store kept across reloads."""
from __future__ import annotations

import asyncio
import logging
import os
import time

import httpx
import pytest

from switchyard.common import instances
from switchyard.common.config import load_config
from switchyard.common.config.reload import ConfigWatcher, restart_needed
from switchyard.edge.app import create_app
from switchyard.edge.limits.memory import MemoryLimiter
from switchyard.edge.limits.redis_store import RedisLimiter
from switchyard.edge.reload import EdgeReloader, rebuild_limits

BASE = """
model_providers:
  - model: openai/gpt-4o-mini
    access_key: ${OPENAI_KEY:-sk-default-key}
    base_url: http://127.0.0.1:9
model_aliases:
  fast: {target: gpt-4o-mini}
"""


class Applied:
    """The configs a watcher handed over."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.configs: list = []
        self.fail_with = fail_with

    async def __call__(self, config) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.configs.append(config)


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    path = tmp_path / "run"
    monkeypatch.setenv(instances.RUN_DIR_ENV, str(path))
    return path


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "plano_config.yaml"
    path.write_text(BASE)
    return path


def watcher_for(path, applied, service="router", **kw) -> ConfigWatcher:
    kw.setdefault("register", False)
    return ConfigWatcher(load_config(path, for_service=service), service, applied,
                         signals=False, **kw)


def rewrite(path, text: str) -> None:
    """Write `text` and make sure the stat changes even on a coarse-mtime filesystem."""
    before = os.stat(path).st_mtime_ns if os.path.exists(path) else 0
    path.write_text(text)
    if os.stat(path).st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


async def test_a_changed_file_is_applied_and_an_unchanged_one_is_not(config_file):
    applied = Applied()
    w = watcher_for(config_file, applied)
    assert await w.check() is None                       # first look: same digest as loaded
    os.utime(config_file, ns=(time.time_ns(), time.time_ns() + 5_000_000))   # a touch
    assert await w.check() is None and applied.configs == []
    rewrite(config_file, BASE + "  smart: {target: gpt-4o-mini}\n")
    outcome = await w.check()
    assert outcome is not None and outcome.applied
    (config,) = applied.configs
    assert set(config.aliases) == {"fast", "smart"} and w.config is config
    assert outcome.digest == config.source_digest == w.applied
    assert await w.check() is None                       # nothing new since


async def test_an_invalid_file_keeps_the_running_config_and_says_why_once(config_file, caplog):
    applied = Applied()
    w = watcher_for(config_file, applied)
    running = w.config
    rewrite(config_file, BASE + "model_aliasess: {}\n")
    with caplog.at_level(logging.ERROR, logger="switchyard.config"):
        outcome = await w.check()
        assert outcome is not None and not outcome.applied
        assert "did you mean 'model_aliases'?" in outcome.error
        (record,) = [r for r in caplog.records if r.name == "switchyard.config"]
        message = record.getMessage()
        assert "still running the config loaded before" in message and outcome.error in message
        assert w.config is running and applied.configs == []
        os.utime(config_file, ns=(time.time_ns(), time.time_ns() + 7_000_000))
        assert await w.check() is None                   # the same broken file: not again
        forced = await w.check(forced=True)              # SIGHUP: answered, not re-logged
        assert forced is not None and not forced.applied and forced.error == outcome.error
        assert len([r for r in caplog.records if r.name == "switchyard.config"]) == 1
    rewrite(config_file, BASE)                            # fixed (back to what runs): nothing
    assert await w.check() is None and applied.configs == []


async def test_kubernetes_symlink_swap_is_seen(tmp_path):
    """A ConfigMap volume: plano_config.yaml -> ..data/plano_config.yaml, ..data -> a
    timestamped directory that the kubelet replaces by relinking ..data."""
    for name, text in (("..2026_01", BASE), ("..2026_02", BASE + "  k8s: {target: gpt-4o-mini}\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "plano_config.yaml").write_text(text)
    (tmp_path / "..data").symlink_to("..2026_01")
    link = tmp_path / "plano_config.yaml"
    link.symlink_to("..data/plano_config.yaml")
    applied = Applied()
    w = watcher_for(link, applied)
    assert await w.check() is None
    (tmp_path / "..data_tmp").symlink_to("..2026_02")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")   # the kubelet's atomic swap
    outcome = await w.check()
    assert outcome is not None and outcome.applied and "k8s" in applied.configs[0].aliases


async def test_a_changed_env_file_is_a_changed_config(config_file, monkeypatch):
    monkeypatch.delenv("OPENAI_KEY", raising=False)
    applied = Applied()
    w = watcher_for(config_file, applied, service="providers")
    assert w.config.providers[0].access_key == "sk-default-key"
    (config_file.parent / ".env").write_text("OPENAI_KEY=sk-rotated-key\n")
    outcome = await w.check()
    assert outcome is not None and outcome.applied
    assert applied.configs[0].providers[0].access_key == "sk-rotated-key"


async def test_restart_only_changes_are_named_and_the_rest_applied(config_file):
    applied = Applied()
    w = watcher_for(config_file, applied, service="edge")
    rewrite(config_file, BASE + "services: {router: 127.0.0.1:19001}\n"
            "listeners: [{type: model, name: l, port: 12999}]\n"
            "limits: {max_body_bytes: 1000}\n")
    outcome = await w.check()
    assert outcome is not None and outcome.applied
    assert outcome.restart == ("services (addresses, connection age)",
                               "listeners (address, port)")
    assert applied.configs[-1].security.max_body_bytes == 1000
    rewrite(config_file, BASE)   # back as started: nothing waits for a restart any more
    outcome = await w.check()
    assert outcome is not None and outcome.applied and outcome.restart == ()
    old, new = load_config(config_file), applied.configs[0]
    assert restart_needed(old, new, "providers") == ["services (addresses, connection age)"]
    assert restart_needed(old, new, "state") == ["services (addresses, connection age)"]


async def test_unsupported_plano_features_are_refused_unless_allowed(config_file):
    rewrite(config_file, BASE)
    text = BASE + "prompt_targets: [{name: x, description: y}]\n"
    strict = watcher_for(config_file, Applied())
    lenient_applied = Applied()
    lenient = watcher_for(config_file, lenient_applied, allow_unsupported=True)
    rewrite(config_file, text)
    refused = await strict.check()
    assert refused is not None and not refused.applied and "--allow-unsupported" in refused.error
    allowed = await lenient.check()
    assert allowed is not None and allowed.applied and lenient_applied.configs


async def test_a_config_the_service_cannot_use_is_refused(config_file):
    from switchyard.common.config import ConfigError
    w = watcher_for(config_file, Applied(ConfigError("f", ["f: cannot route: no model"])))
    rewrite(config_file, BASE + "  other: {target: gpt-4o-mini}\n")
    outcome = await w.check()
    assert outcome is not None and not outcome.applied and outcome.error == "f: cannot route: no model"
    assert "other" not in w.config.aliases


async def test_the_running_watch_reacts_to_a_change_and_to_sighup(config_file):
    applied = Applied()
    w = watcher_for(config_file, applied, interval=0.05)
    w.start()
    try:
        rewrite(config_file, BASE + "  polled: {target: gpt-4o-mini}\n")
        await until(lambda: applied.configs, 5, "the polled change")
        slow = watcher_for(config_file, Applied(), interval=3600)   # never polls by itself
        slow_applied = slow.apply
        slow.start()
        try:
            rewrite(config_file, BASE + "  signalled: {target: gpt-4o-mini}\n")
            slow.request()   # what the SIGHUP handler calls
            await until(lambda: slow_applied.configs, 5, "the SIGHUP reload")
            assert "signalled" in slow.config.aliases
        finally:
            await slow.close()
    finally:
        await w.close()


async def test_the_process_record_says_what_runs_and_what_was_refused(config_file, run_dir):
    w = watcher_for(config_file, Applied(), register=True)
    w.start()
    try:
        await until(lambda: instances.running(str(config_file)), 5, "the record")
        (found,) = instances.running(str(config_file))
        assert (found.pid, found.service, found.applied) == (os.getpid(), "router", w.applied)
        assert oct(os.stat(run_dir).st_mode & 0o777) == "0o700"
        rewrite(config_file, "model_providers: 7\n")
        outcome = await w.check()
        assert outcome is not None and not outcome.applied
        record = instances.record_of(found)
        assert record is not None and record.rejected == outcome.digest
        assert record.error == outcome.error and record.applied == w.applied
        assert instances.running(str(config_file.parent / "other.yaml")) == []
    finally:
        await w.close()
    assert instances.running(str(config_file)) == [] and not list(run_dir.iterdir())


def test_a_stale_record_is_dropped(config_file, run_dir):
    stale = instances.Registration("edge", str(config_file))
    stale.instance.pid, stale.path = 2 ** 22 + 12345, str(run_dir / "4206649.json")
    stale.write()
    assert (run_dir / "4206649.json").exists()
    assert instances.running(str(config_file)) == []
    assert not (run_dir / "4206649.json").exists()


async def until(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


# ---- the edge's part -------------------------------------------------------------------

EDGE = BASE + """
auth:
  keys:
    - {key: key-kept-0123456789, tenant: kept, requests_per_minute: 5}
    - {key: key-gone-0123456789, tenant: gone}
"""


def edge_config(tmp_path, text: str):
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    return load_config(path, for_service="edge")


async def status(guard, key: str) -> int:
    """An authenticated request to a path the app does not have: 404 once let in."""
    transport = httpx.ASGITransport(app=guard)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        r = await client.get("/v1/nothing", headers={"authorization": f"Bearer {key}"})
    return r.status_code


async def test_a_removed_key_is_refused_and_counts_survive_the_reload(tmp_path):
    guard = create_app(edge_config(tmp_path, EDGE), backends=None)
    reloader = EdgeReloader(guard)
    assert await status(guard, "key-gone-0123456789") == 404
    for _ in range(5):
        assert await status(guard, "key-kept-0123456789") == 404
    limiter = guard.limits.limiter
    await reloader.apply(edge_config(tmp_path, EDGE.replace(
        "    - {key: key-gone-0123456789, tenant: gone}\n", "")))
    assert await status(guard, "key-gone-0123456789") == 401
    assert guard.limits.limiter is limiter               # same store: the five still count
    assert await status(guard, "key-kept-0123456789") == 429
    await reloader.apply(edge_config(tmp_path, EDGE.replace("requests_per_minute: 5",
                                                            "requests_per_minute: 500")))
    # The same bucket, now refilling at 500 a minute: admitted again within a fraction of
    # a second (a fresh bucket would have admitted at once, a kept 5/min one in 12 s).
    deadline = time.monotonic() + 5
    while (code := await status(guard, "key-kept-0123456789")) == 429 \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert code == 404
    assert await status(guard, "key-gone-0123456789") == 404   # and the key is back
    await reloader.close()


async def test_limits_move_to_another_store_and_the_old_one_is_retired(tmp_path):
    guard = create_app(edge_config(tmp_path, EDGE), backends=None)
    memory = guard.limits
    assert isinstance(memory.limiter, MemoryLimiter)
    redis_text = EDGE + "redis: {url: 'redis://127.0.0.1:9/0', on_unavailable: allow}\n"
    redis_config = edge_config(tmp_path, redis_text)
    fresh, retired = rebuild_limits(memory, redis_config.security)
    assert retired is memory and fresh is not None
    assert isinstance(fresh.limiter, RedisLimiter)
    assert fresh.limiter.settings == redis_config.security.redis
    kept, none = rebuild_limits(fresh, edge_config(tmp_path, redis_text.replace(
        "requests_per_minute: 5", "requests_per_minute: 6")).security)
    assert kept is not None and kept.limiter is fresh.limiter and none is None
    gone, old = rebuild_limits(fresh, edge_config(tmp_path, BASE).security)
    assert gone is None and old is fresh
    await fresh.close()


ROUTED = "version: v0.4.0\n" + BASE + """
routing_preferences:
  - {name: code, description: writing code, models: [openai/gpt-4o-mini]}
routing: {route_on_user_only: true, session_ttl_seconds: 60}
"""


async def test_routing_is_rebuilt_and_keeps_its_pins_unless_they_move(tmp_path):
    from switchyard.common.proto import router_pb2
    from switchyard.edge.pins import MemoryStore
    from switchyard.edge.sessions_redis import RedisStore

    guard = create_app(edge_config(tmp_path, ROUTED), backends=None)
    reloader = EdgeReloader(guard)
    app = reloader.app
    first = app.state.routing
    await first.pins.put("k", router_pb2.RouteDecision(route="code"))
    await reloader.apply(edge_config(tmp_path, ROUTED.replace("writing code", "coding")))
    kept = app.state.routing
    assert kept is not first and kept.settings.preferences[0].description == "coding"
    assert kept.sessions is first.sessions and (await kept.pins.get("k")).route == "code"
    assert kept.latencies is first.latencies
    await reloader.apply(edge_config(tmp_path, ROUTED.replace(
        "session_ttl_seconds: 60}", "session_ttl_seconds: 60, session_cache: "
        "{type: redis, url: 'redis://127.0.0.1:9/0'}}")))
    assert isinstance(app.state.routing.sessions, RedisStore)
    await reloader.apply(edge_config(tmp_path, BASE))   # routes nothing now
    assert app.state.routing is None
    await reloader.close()
    assert isinstance(first.sessions, MemoryStore)
