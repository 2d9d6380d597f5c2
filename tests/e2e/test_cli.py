"""`switchyard check`: the model table, or every config error at once with a non-zero exit."""
import subprocess
import sys

from tests.e2e.harness import ROOT


def check(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switchyard", "check", "--config", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-secret-value"})


def test_check_prints_the_model_table_without_keys(tmp_path):
    cfg = tmp_path / "plano_config.yaml"
    cfg.write_text("""
model_providers:
  - model: openai/gpt-4o-mini
    access_key: $OPENAI_API_KEY
  - model: vllm/qwen2.5
    provider_interface: openai
    base_url: http://127.0.0.1:8000
model_aliases:
  fast-model: {target: gpt-4o-mini}
""")
    out = check(cfg)
    assert out.returncode == 0, out.stderr
    assert "gpt-4o-mini" in out.stdout and "fast-model" in out.stdout
    assert "http://127.0.0.1:8000/v1/chat/completions" in out.stdout
    assert "sk-secret-value" not in out.stdout + out.stderr


def test_check_reports_a_bad_provider_with_its_fix(tmp_path):
    cfg = tmp_path / "plano_config.yaml"
    cfg.write_text("model_providers:\n  - model: vllm/qwen2.5\n"
                   "  - model: openai/gpt-4o\n    access_key: $NOT_SET_ANYWHERE\n")
    out = check(cfg)
    assert out.returncode != 0
    assert "provider_interface: openai" in out.stderr and "NOT_SET_ANYWHERE" in out.stderr


def test_check_reports_every_error_and_fails(tmp_path):
    cfg = tmp_path / "plano_config.yaml"
    cfg.write_text("""
listeners:
  - {type: model, name: l, address: 127.0.0.1, port: not-a-port}
model_providers:
  - model: openai/gpt-4o
    access_key: sk-x
model_aliases:
  fast-model: {target: no-such-model}
state_storage: {type: redis}
""")
    out = check(cfg)
    assert out.returncode != 0
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(lines) >= 3, out.stderr
    assert all(str(cfg) in l for l in lines)
    assert "port" in out.stderr and "no-such-model" in out.stderr and "redis" in out.stderr
    assert "Traceback" not in out.stderr
