"""Config building blocks: the error report, env expansion, and typed field readers."""
from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchyard.common.config.model import Notice

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")

HOST_PATTERN = re.compile(r"^[A-Za-z0-9._\-:\[\]]+$")

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ConfigError(Exception):
    """Every problem found in one config file; `str()` gives one line per problem."""

    def __init__(self, path: str, errors: list[str]) -> None:
        self.path = str(path)
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(self.errors)


# The parts of the file that hold secrets, and the services that use them. A service loading
# the file for itself (`load_config(path, for_service=...)`) expands a part's `$VAR`s only
# where it is listed, so each pod needs only its own secrets and a missing one is an error
# only there; elsewhere the part's secret fields are left empty.
SECRET_READERS: dict[str, frozenset[str]] = {
    "model_providers": frozenset({"providers"}),   # access_key, secret_key, session_token,
                                                   # header values
    "state_storage": frozenset({"state"}),         # connection_string
    "auth": frozenset({"edge"}),                   # keys[].key
    "redis": frozenset({"edge"}),                  # url (may carry a password)
    "filters": frozenset({"edge"}),                # urls (may carry credentials)
}
SERVICES = ("router", "providers", "state", "edge")


@dataclass
class Report:
    """Collects errors as `file: entry: problem` lines, and notices (Plano keys not served
    as written, config/plano_scope.py) as lines of their own. `env` is what `$VAR`s expand
    from: the environment, then the `.env` beside the file. `service`: the one service the
    file is read for (None: all of them, as `check` and `up` read it)."""
    path: str
    errors: list[str] = field(default_factory=list)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    notices: list[Notice] = field(default_factory=list)
    service: str | None = None

    def reads(self, part: str) -> bool:
        """Whether the secrets of `part` (a SECRET_READERS key) are expanded here."""
        return self.service is None or self.service in SECRET_READERS[part]

    def add(self, where: str, message: str) -> None:
        self.errors.append(self._line(where, message))

    def note(self, kind: str, where: str, message: str) -> None:
        self.notices.append(Notice(kind, self._line(where, message)))

    def _line(self, where: str, message: str) -> str:
        return f"{self.path}: {where}: {message}" if where else f"{self.path}: {message}"


def parse_duration(value: Any) -> float | None:
    """Seconds from `30s`, `500ms`, `2m`, `1h` or a plain number; None when not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    return None


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """Expand `$VAR`, `${VAR}`, `${VAR:-default}` (`$$` is a literal `$`); also the unset names."""
    env = os.environ if environ is None else environ
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(3)
        if name in env:
            return env[name]
        if m.group(2) is not None:
            return m.group(2)
        missing.append(name)
        return ""
    return _VAR.sub(sub, text), missing


def check_keys(rep: Report, where: str, raw: Mapping[Any, Any], known: set[str], ignored: set[str],
               what: str = "key", moved: Mapping[str, str] | None = None) -> None:
    """Report keys that are neither ours nor Plano's, suggesting the closest known one (or,
    from `moved`, where a key of an older format lives now)."""
    for key in raw:
        if key in known or key in ignored:
            continue
        if moved and key in moved:
            rep.add(where, f"unknown {what} '{key}'; it belongs under {moved[key]}")
            continue
        close = difflib.get_close_matches(str(key), sorted(known | ignored), n=1)
        hint = f"did you mean '{close[0]}'?" if close else \
            "allowed: " + ", ".join(sorted(known | ignored))
        rep.add(where, f"unknown {what} '{key}'; {hint}")


def expand(rep: Report, where: str, field_name: str, value: Any) -> Any:
    """Expand env vars in a string (or strings nested in lists/maps); unset ones are errors."""
    if isinstance(value, str):
        out, missing = expand_env(value, rep.env)
        for var in missing:
            rep.add(where, f"{field_name} uses ${var}, which is not set in the environment; "
                           f"export {var} or change {field_name}")
        return out
    if isinstance(value, list):
        return [expand(rep, where, field_name, v) for v in value]
    if isinstance(value, dict):
        return {k: expand(rep, where, f"{field_name}.{k}", v) for k, v in value.items()}
    return value


def positive_int(rep: Report, where: str, key: str, value: Any, default: int | None
                  ) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        rep.add(where, f"{key} must be a positive whole number, got {value!r}")
        return default
    return value


def duration(rep: Report, where: str, key: str, value: Any, default: float) -> float:
    if value is None:
        return default
    seconds = parse_duration(value)
    if seconds is None or seconds <= 0:
        rep.add(where, f"{key} must be a positive duration like 30s, 500ms, 2m or a number of "
                       f"seconds, got {value!r}")
        return default
    return seconds


def boolean(rep: Report, where: str, key: str, value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        rep.add(where, f"{key} must be true or false, got {value!r}")
        return False
    return value


def is_host_port(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith("unix:") or "://" in value:
        return True
    host, sep, port = value.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)
