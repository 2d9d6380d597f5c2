"""The `.env` beside the config file, as Plano's CLI reads it: `NAME=value` lines that fill
the config's `$VAR`s. The process environment wins over the file."""
from __future__ import annotations

import os
import re
from collections import ChainMap
from collections.abc import Mapping

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_file_for(config_path: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(config_path)), ".env")


def parse_env_file(text: str, path: str) -> tuple[dict[str, str], list[str]]:
    """(variables, one `path: line N: problem` per bad line). Blank lines and `#` comments
    are skipped; `export NAME=value` and quoted values are accepted."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not _NAME.match(name):
            # Never echo the line: it may hold a key.
            problems.append(f"{path}: line {n}: expected NAME=value (NAME: letters, digits, "
                            "underscores); fix or remove the line")
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values, problems


def config_environment(config_path: str, environ: Mapping[str, str] | None = None
                       ) -> tuple[Mapping[str, str], str | None, list[str]]:
    """What the config's `$VAR`s expand from: the environment, then `.env` beside the file.
    Also the `.env` path when one was read, and its problems."""
    env = os.environ if environ is None else environ
    path = env_file_for(config_path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return env, None, []
    except (OSError, UnicodeDecodeError) as exc:
        return env, None, [f"{path}: cannot read the file ({type(exc).__name__}); fix its "
                           "permissions or remove it"]
    values, problems = parse_env_file(text, path)
    return ChainMap(dict(env), values) if values else env, path, problems
