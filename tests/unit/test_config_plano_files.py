"""Plano-format configs covering every key of Plano's schema (tests/fixtures/plano_configs/),
each run through `switchyard check`: its exit code and every line it prints about the file.

A config's header says what `check` must report:
    # expect: ok | unsupported | error
    # line: <text of one reported line, after `file: `>
and nothing else may be reported about it (no error, notice or unsupported line more).
"""
from __future__ import annotations

import contextlib
import io
import pathlib
from typing import Any

import pytest
import yaml

from switchyard.cli import main

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "plano_configs"
CONFIGS = sorted(FIXTURES.glob("*.yaml"))
EXIT = {"ok": 0, "unsupported": 1, "error": 2}
SCREEN = 24   # a broken config's whole answer fits one terminal screen


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("FIXTURE_DIR", str(FIXTURES))
    for var in ("FIXTURE_OPENAI_KEY", "FIXTURE_DB_PASSWORD", "SWITCHYARD_ROUTER_ADDR",
                "SWITCHYARD_PROVIDERS_ADDR", "SWITCHYARD_STATE_ADDR"):
        monkeypatch.delenv(var, raising=False)


def expectations(path: pathlib.Path) -> tuple[str, list[str]]:
    kind, lines = "", []
    for raw in path.read_text().splitlines():
        if not raw.startswith("#"):
            break
        text = raw[1:].strip()
        if text.startswith("expect:"):
            kind = text.partition(":")[2].strip()
        elif text.startswith("line:"):
            lines.append(text.partition(":")[2].strip())
    assert kind in EXIT, f"{path.name}: header needs `# expect: ok|unsupported|error`"
    return kind, lines


def run_check(path: pathlib.Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["check", "--config", str(path)])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def reported(path: pathlib.Path, text: str) -> list[str]:
    """The lines about the file (`file: ...`), less check's own verdict and summary."""
    prefix = f"{path}: "
    return [line[len(prefix):] for line in text.splitlines() if line.startswith(prefix)
            and line[len(prefix):] != "OK" and "Plano feature(s) above" not in line]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_check_reports_what_the_config_header_says(path):
    kind, wanted = expectations(path)
    code, out, err = run_check(path)
    assert code == EXIT[kind], out + err
    got = reported(path, out + err)
    for text in wanted:
        assert sum(line.startswith(text) for line in got) == 1, (text, got)
    assert len(got) == len(wanted), f"unexpected lines: {got}"
    if kind == "error":
        lines = err.splitlines()
        assert out == "" and len(lines) <= SCREEN, err
        assert "Traceback" not in err
    else:
        assert "LISTENER" in out and "MODEL" in out   # both tables


def test_unsupported_configs_say_what_happens_without_the_feature():
    for path in CONFIGS:
        _, err = run_check(path)[1:]
        for line in reported(path, err):
            if ": not supported:" in line:
                assert "without" in line or "runs as" in line, line


def _paths(node: Any, prefix: str = "") -> set[str]:
    """Every key path of a YAML document, as schema_keys.txt writes them."""
    out: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            name = "*" if prefix in ("endpoints", "model_aliases") else str(key)
            path = f"{prefix}.{name}" if prefix else name
            out.add(path)
            out |= _paths(value, path)
    elif isinstance(node, list):
        for item in node:
            out |= _paths(item, f"{prefix}[]")
    return out


def test_the_configs_cover_every_key_of_planos_schema():
    keys = [ln for ln in (FIXTURES / "schema_keys.txt").read_text().splitlines()
            if ln and not ln.startswith("#")]
    assert len(keys) > 150
    seen: set[str] = set()
    for path in CONFIGS:
        seen |= _paths(yaml.safe_load(path.read_text()))
    assert [k for k in keys if k not in seen] == []


def test_dotenv_beside_the_config_fills_variables_and_the_environment_wins(monkeypatch):
    from switchyard.common.config import load_config
    config = load_config(FIXTURES / "model_gateway.yaml")
    assert config.env_file == str(FIXTURES / ".env")
    assert config.provider("primary").access_key == "sk-fixture-from-dotenv"
    assert "pw-from-dotenv" in (config.state.connection_string or "")
    monkeypatch.setenv("FIXTURE_OPENAI_KEY", "sk-from-the-environment")
    assert load_config(FIXTURES / "model_gateway.yaml").provider("primary").access_key == \
        "sk-from-the-environment"


def test_check_output_names_the_dotenv_and_never_its_values():
    code, out, err = run_check(FIXTURES / "model_gateway.yaml")
    assert code == 0
    assert str(FIXTURES / ".env") in out
    assert "sk-fixture-from-dotenv" not in out + err and "pw-from-dotenv" not in out + err


def test_check_lists_the_listeners_filter_chains_in_order():
    code, out, _ = run_check(FIXTURES / "model_gateway.yaml")
    assert code == 0
    assert "input filters: pii_guard (http)" in out
    assert "output filters: redactor (mcp)" in out
