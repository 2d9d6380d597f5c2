"""`switchyard up` with a Plano config that uses features Switchyard does not serve: refused
with one line each, or started with --allow-unsupported, which logs the same lines; the
launcher says which config (and `.env`) it runs."""
from __future__ import annotations

import os
import subprocess
import sys

import openai

from tests.e2e.harness import OPENAI_KEY, ROOT, Gateway, free_port, gateway_config

UNSUPPORTED = """
prompt_guards:
  input_guards:
    jailbreak:
      on_exception: {message: "I can't help with that."}
routing:
  llm_provider: arch-router
"""


class AllowingGateway(Gateway):
    """The harness's gateway, started with `up --allow-unsupported`."""

    def start(self, timeout: float = 60.0) -> Gateway:
        from tests.e2e.harness import wait_for
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "switchyard", "up", "--allow-unsupported", "--config",
             str(self.config_path)], cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.healthy() and "gateway listening on" in self.log(), timeout,
                 f"gateway health (log: {self.log_path})")
        return self


def test_up_refuses_unsupported_features_and_names_each(emulator, tmp_path):
    cfg = tmp_path / "plano_config.yaml"
    cfg.write_text(gateway_config(emulator.url, free_port(), extra=UNSUPPORTED))
    out = subprocess.run([sys.executable, "-m", "switchyard", "up", "--config", str(cfg)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.splitlines()
    assert [ln for ln in lines if ln.startswith(f"{cfg}: ")] == [
        f"{cfg}: prompt_guards: not supported: Plano's jailbreak guard; without it requests "
        "reach the model unscreened and the on_exception message is never sent (a guard can "
        "run as an input filter: filters + input_filters)"]
    assert "pass --allow-unsupported" in lines[-1]
    assert "is up" not in out.stdout   # nothing was started


def test_up_allow_unsupported_starts_and_logs_the_same_lines(emulator, tmp_path):
    port = free_port()
    (tmp_path / ".env").write_text(f"E2E_DOTENV_KEY={OPENAI_KEY}\n")
    text = gateway_config(emulator.url, port, extra=UNSUPPORTED).replace(
        f"access_key: {OPENAI_KEY}\n    base_url: {emulator.url}\n    default: true",
        f"access_key: $E2E_DOTENV_KEY\n    base_url: {emulator.url}\n    default: true", 1)
    assert "$E2E_DOTENV_KEY" in text
    gw = AllowingGateway(text, tmp_path, port).start()
    try:
        log = gw.log()
        cfg = gw.config_path
        assert f"switchyard: config {cfg} (variables also from {tmp_path / '.env'})" in log
        assert f"switchyard: {cfg}: prompt_guards: not supported: Plano's jailbreak guard" in log
        assert f"switchyard: {cfg}: routing.llm_provider: ignored" in log
        assert OPENAI_KEY not in log
        # The key came from the .env: the emulator accepts only the real one.
        client = openai.OpenAI(api_key="k", base_url=f"{gw.url}/v1", max_retries=0, timeout=30)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
    finally:
        assert gw.stop() == 0
