"""Run test code in a fresh interpreter: what a module imports or starts is only visible in
a process that has not loaded the rest of the suite."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable


def run_fresh(code: str, drop_env: Callable[[str], bool] = lambda name: False) -> str:
    """`code`'s stdout; its exit status must be 0 (else its stderr is the failure).
    `drop_env` names the environment variables the child must not see."""
    env = {k: v for k, v in os.environ.items() if not drop_env(k)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout
