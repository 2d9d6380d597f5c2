"""The `switchyard` command: `up` (all four services), `serve <service>`, `check`, `probe`,
`reload`."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pathlib
import signal
import sys
from typing import TYPE_CHECKING

from switchyard.common.config.fields import SERVICES
from switchyard.common.config.model import Config

if TYPE_CHECKING:
    from switchyard.common.instances import Instance

BUNDLED_CONFIG = pathlib.Path(__file__).resolve().parent / "examples" / "plano_config.yaml"


def default_config_path() -> str:
    """`$SWITCHYARD_CONFIG`, else ./plano_config.yaml, else the bundled example."""
    env = os.environ.get("SWITCHYARD_CONFIG")
    if env:
        return env
    local = pathlib.Path("plano_config.yaml")
    return str(local if local.exists() else BUNDLED_CONFIG)


def _load(path: str, service: str | None = None) -> Config:
    """The config (for one service: only its secrets), or its errors and exit 2."""
    from switchyard.common.config import ConfigError, load_config
    try:
        return load_config(path, for_service=service)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(2) from None


ALLOW_HELP = ("start even when the config uses Plano features Switchyard does not serve "
              "(`check` names them); they are logged and left out")


def refuse_unsupported(config: Config, allowed: bool, who: str) -> bool:
    """Print why a config with unsupported Plano features does not start; True if refused."""
    if not config.unsupported or allowed:
        return False
    for notice in config.unsupported:
        print(notice.line, file=sys.stderr)
    print(f"{who}: not starting: the config uses Plano features Switchyard does not serve "
          "(above); remove them, or pass --allow-unsupported to start without them",
          file=sys.stderr)
    return True


def cmd_check(args: argparse.Namespace) -> int:
    """Errors: exit 2. Unsupported Plano features: their lines, exit 1. Else OK, exit 0."""
    from switchyard.common.config import format_listener_table, format_model_table
    config = _load(args.config)
    unsupported = config.unsupported
    for notice in unsupported:
        print(notice.line, file=sys.stderr)
    if unsupported:
        print(f"{args.config}: {len(unsupported)} Plano feature(s) above are not supported; "
              "`switchyard up --allow-unsupported` starts without them", file=sys.stderr)
    else:
        print(f"{args.config}: OK")
    if config.env_file:
        print(f"variables: the environment, then {config.env_file}")
    print(format_listener_table(config))
    print()
    print(format_model_table(config))
    others = [n for n in config.notices if n.kind != "unsupported"]
    if others:
        print()
        for notice in others:
            print(notice.line)
    return 1 if unsupported else 0


def cmd_serve(args: argparse.Namespace) -> int:
    import setproctitle

    from switchyard.common.internal_auth import TokenError, internal_token, refusal
    from switchyard.common.launched import LAUNCHER_PID_ENV, die_with_launcher
    from switchyard.common.logs import setup_logging
    die_with_launcher()
    # SIGHUP means "reload" (config/reload.py): until the watch takes it, it must not kill us.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    setproctitle.setproctitle(f"switchyard serve {args.service} --config {args.config}")
    setup_logging(args.service)
    raise_open_files_limit()
    config = _load(args.config, args.service)
    if refuse_unsupported(config, args.allow_unsupported, f"switchyard {args.service}"):
        return 2
    if args.service == "edge" and not os.environ.get(LAUNCHER_PID_ENV):
        # Alone (a container): the edge says what is not served; `up` has said it already.
        for notice in config.notices:
            logging.getLogger("switchyard.config").warning("%s", notice.line)
    try:
        token = internal_token()
    except TokenError as exc:
        print(f"switchyard {args.service}: {exc}", file=sys.stderr)
        return 2
    if args.service == "edge":
        from switchyard.common.ports import EXIT_ADDRESS_IN_USE, bind_error, in_use
        lst = config.listener
        if in_use(bind_error(lst.address, lst.port)):
            print(f"switchyard edge: port {lst.port} is already in use ({lst.address}:"
                  f"{lst.port}); stop what is using it or set another port under "
                  f"listeners in {args.config}", file=sys.stderr)
            return EXIT_ADDRESS_IN_USE
        from switchyard.edge.server import run_edge
        run_edge(config, args.config, allow_unsupported=args.allow_unsupported)
        return 0
    address = listen_address(config, args.service)
    reason = refusal(args.service, address, token, args.insecure)
    if reason is not None:
        print(reason, file=sys.stderr)
        return 2
    from switchyard.common.service_metrics import serve_if_configured
    serve_if_configured(args.service)
    if args.service == "router":
        from switchyard.router.service import serve
    elif args.service == "providers":
        from switchyard.providers.service import serve
    else:
        from switchyard.state.service import serve
    # uvloop only where it pays: the providers' upstream sockets. Router and state serve gRPC
    # alone, as fast on asyncio's own loop (docs/benchmarks.md, Memory), and 1.5–1.9 MB
    # smaller each.
    if args.service == "providers":
        try:
            import uvloop
            uvloop.install()
        except ImportError:  # pragma: no cover - uvloop is a dependency, but stay runnable
            pass
    asyncio.run(serve(config, address, token, allow_unsupported=args.allow_unsupported))
    return 0


def raise_open_files_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: the edge holds ~1 descriptor per stream, and
    the usual soft limit of 1024 is reached at about 1,000 concurrent streams."""
    import resource

    from switchyard.common.config.descriptors import UNLIMITED
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit is refused as a soft one; the kernel's usual cap is 2^20.
    target = UNLIMITED if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return
    logging.getLogger(__name__).debug("open files limit raised from %d to %d", soft, target)


def listen_address(config: Config, service: str) -> str:
    """Where a gRPC service binds: `SWITCHYARD_<SERVICE>_LISTEN`, else its `services` address.

    In a container the service binds one address (0.0.0.0:port) and is reached at another;
    the loader has already applied the `SWITCHYARD_<SERVICE>_ADDR` overrides to the latter.
    """
    reached_at: str = getattr(config.services, service)
    return os.environ.get(f"SWITCHYARD_{service.upper()}_LISTEN") or reached_at


def cmd_probe(args: argparse.Namespace) -> int:
    """Exit 0 when the service answers its health check (container health checks): the
    edge's /healthz (alive), or /readyz with --ready; a backend's gRPC health (SERVING,
    which a draining backend is not)."""
    config = _load(args.config, args.service)
    if args.service == "edge":
        import urllib.request
        lst = config.listener
        host = "127.0.0.1" if lst.address in ("0.0.0.0", "::") else lst.address
        path = "/readyz" if args.ready else "/healthz"
        try:
            with urllib.request.urlopen(f"http://{host}:{lst.port}{path}", timeout=2) as r:
                return 0 if r.status == 200 else 1
        except OSError:
            return 1
    from switchyard.common.grpc_server import is_serving
    address = listen_address(config, args.service).replace("0.0.0.0", "127.0.0.1")
    return 0 if asyncio.run(is_serving(address, timeout=2.0)) else 1


def cmd_up(args: argparse.Namespace) -> int:
    from switchyard.launcher import Launcher
    config = _load(args.config)
    if refuse_unsupported(config, args.allow_unsupported, "switchyard"):
        return 2
    return Launcher(config, os.path.abspath(args.config),
                    allow_unsupported=args.allow_unsupported).run()


def cmd_reload(args: argparse.Namespace) -> int:
    """SIGHUP to every service running the config file, then wait until each says it runs
    the file as it is now, or why not. Exit 0: all reloaded; 2: one or more kept their
    config (its errors are printed); 1: none running, or no answer in time."""
    from switchyard.common import instances
    from switchyard.common.config.reload import read_digest
    path = os.path.abspath(args.config)
    found = instances.running(path)
    if not found:
        print(f"switchyard reload: no running switchyard service uses {path} (services "
              f"started with `switchyard up` or `serve` on this machine, user "
              f"{os.getuid()}, record themselves in {instances.run_dir()})", file=sys.stderr)
        return 1
    digest = read_digest(path)
    if digest is None:
        print(f"switchyard reload: cannot read {path}", file=sys.stderr)
        return 1
    for instance in found:
        try:
            os.kill(instance.pid, signal.SIGHUP)
        except ProcessLookupError:
            pass
    outcome = _await_reload(found, digest, args.timeout)
    shown: set[str] = set()
    code = 0
    for instance in found:
        now = outcome.get(instance.pid)
        who = f"{instance.service} (pid {instance.pid})"
        if now is None:
            print(f"{who}: no answer within {args.timeout:g} s", file=sys.stderr)
            code = max(code, 1)
        elif now.applied == digest:
            waiting = f"; waiting for a restart: {'; '.join(now.restart)}" if now.restart \
                else ""
            print(f"{who}: reloaded{waiting}")
        else:
            print(f"{who}: kept its running config", file=sys.stderr)
            if now.error not in shown:
                shown.add(now.error)
                print(now.error, file=sys.stderr)
            code = 2
    return code


def _await_reload(found: list[Instance], digest: str, timeout: float
                  ) -> dict[int, Instance]:
    """Each instance's record once it has taken a stand on `digest` (absent: no answer)."""
    import time

    from switchyard.common import instances
    deadline = time.monotonic() + timeout
    done: dict[int, Instance] = {}
    while True:
        for instance in found:
            if instance.pid in done:
                continue
            now = instances.record_of(instance)
            if now is not None and digest in (now.applied, now.rejected):
                done[instance.pid] = now
        if len(done) == len(found) or time.monotonic() >= deadline:
            return done
        time.sleep(0.05)   # polling the records: the services answer within a second


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchyard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start all four services and supervise them")
    up.add_argument("--config", default=None)
    up.add_argument("--allow-unsupported", action="store_true", help=ALLOW_HELP)
    serve = sub.add_parser("serve", help="run one service")
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument("--config", default=None)
    serve.add_argument("--allow-unsupported", action="store_true", help=ALLOW_HELP)
    serve.add_argument("--insecure", action="store_true",
                       help="let a backend listen beyond loopback without an internal token")
    check = sub.add_parser("check", help="validate a config and print the model table")
    check.add_argument("--config", default=None)
    probe = sub.add_parser("probe", help="exit 0 when a service is healthy")
    probe.add_argument("service", choices=SERVICES)
    probe.add_argument("--config", default=None)
    probe.add_argument("--ready", action="store_true",
                       help="edge: ready to serve (routes and providers), not only alive")
    reload = sub.add_parser("reload", help="make the running services apply the config file "
                                           "now, and say what each did")
    reload.add_argument("--config", default=None)
    reload.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for every service's answer (default 10)")
    args = parser.parse_args(argv)
    if args.config is None:
        args.config = default_config_path()
    logging.captureWarnings(True)
    handlers = {"up": cmd_up, "serve": cmd_serve, "check": cmd_check, "probe": cmd_probe,
                "reload": cmd_reload}
    handler = handlers[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
