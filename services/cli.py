"""The `switchyard` command: `up` (all four services), `serve <service>`, `check`."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pathlib
import sys

from switchyard.common.config.model import Config

SERVICES = ("router", "providers", "state", "edge")
BUNDLED_CONFIG = pathlib.Path(__file__).resolve().parent / "examples" / "plano_config.yaml"


def default_config_path() -> str:
    """`$SWITCHYARD_CONFIG`, else ./plano_config.yaml, else the bundled example."""
    env = os.environ.get("SWITCHYARD_CONFIG")
    if env:
        return env
    local = pathlib.Path("plano_config.yaml")
    return str(local if local.exists() else BUNDLED_CONFIG)


def _load(path: str) -> Config:
    from switchyard.common.config import ConfigError, load_config
    try:
        return load_config(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(2) from None


def cmd_check(args: argparse.Namespace) -> int:
    from switchyard.common.config import format_model_table
    config = _load(args.config)
    print(f"{args.config}: OK")
    print(format_model_table(config))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import setproctitle

    from switchyard.common.internal_auth import TokenError, internal_token, refusal
    from switchyard.common.logs import setup_logging
    from switchyard.launcher import die_with_launcher
    die_with_launcher()
    setproctitle.setproctitle(f"switchyard serve {args.service} --config {args.config}")
    setup_logging(args.service)
    raise_open_files_limit()
    config = _load(args.config)
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
        run_edge(config, args.config)
        return 0
    address = listen_address(config, args.service)
    reason = refusal(args.service, address, token, args.insecure)
    if reason is not None:
        print(reason, file=sys.stderr)
        return 2
    from switchyard.common.metrics import serve_metrics_if_configured
    serve_metrics_if_configured(args.service)
    if args.service == "router":
        from switchyard.router.service import serve
    elif args.service == "providers":
        from switchyard.providers.service import serve
    else:
        from switchyard.state.service import serve
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency, but stay runnable
        pass
    asyncio.run(serve(config, address, token))
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
    """Exit 0 when the service answers its health check (container health checks)."""
    config = _load(args.config)
    if args.service == "edge":
        import urllib.request
        lst = config.listener
        host = "127.0.0.1" if lst.address in ("0.0.0.0", "::") else lst.address
        try:
            with urllib.request.urlopen(f"http://{host}:{lst.port}/healthz", timeout=2) as r:
                return 0 if r.status == 200 else 1
        except OSError:
            return 1
    from switchyard.common.grpc_server import is_serving
    address = listen_address(config, args.service).replace("0.0.0.0", "127.0.0.1")
    return 0 if asyncio.run(is_serving(address, timeout=2.0)) else 1


def cmd_up(args: argparse.Namespace) -> int:
    from switchyard.launcher import Launcher
    config = _load(args.config)
    return Launcher(config, os.path.abspath(args.config)).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchyard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start all four services and supervise them")
    up.add_argument("--config", default=None)
    serve = sub.add_parser("serve", help="run one service")
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument("--config", default=None)
    serve.add_argument("--insecure", action="store_true",
                       help="let a backend listen beyond loopback without an internal token")
    check = sub.add_parser("check", help="validate a config and print the model table")
    check.add_argument("--config", default=None)
    probe = sub.add_parser("probe", help="exit 0 when a service is healthy")
    probe.add_argument("service", choices=SERVICES)
    probe.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    if args.config is None:
        args.config = default_config_path()
    logging.captureWarnings(True)
    handlers = {"up": cmd_up, "serve": cmd_serve, "check": cmd_check, "probe": cmd_probe}
    handler = handlers[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
