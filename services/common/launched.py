"""The side of `switchyard up` its services see: the variables the launcher sets for them
and what a child does with them. Apart from `launcher.py` so a service does not load the
launcher's own imports (urllib.request: 1.2 MB of an idle state or router service's RSS)."""
from __future__ import annotations

import os
import signal

LAUNCHER_PID_ENV = "SWITCHYARD_LAUNCHER_PID"
# The launcher's random instance token: its edge echoes it on /healthz, so an answer from
# some other gateway on the same port is never taken for its own.
INSTANCE_ENV = "SWITCHYARD_INSTANCE"
INSTANCE_HEADER = "x-switchyard-instance"
INSTANCE_HEADERS = {INSTANCE_HEADER: os.environ[INSTANCE_ENV]} if INSTANCE_ENV in os.environ else {}


def die_with_launcher() -> None:
    """In a child: get SIGTERM when the launcher dies, even by SIGKILL (Linux prctl).

    Done by the child itself at start-up rather than in a preexec_fn: forking with a
    preexec_fn in the launcher, which has gRPC threads, can deadlock.
    """
    launcher = os.environ.get(LAUNCHER_PID_ENV)
    if not launcher:
        return
    import ctypes  # only in a launched child (~0.4 MB)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - non-Linux
        return
    if os.getppid() != int(launcher):  # the launcher died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
