"""Port clashes between the model listener and the backend services (and among those):
found by `check`, instead of a crash at `switchyard up`."""
from __future__ import annotations

import os

from switchyard.common.config.fields import Report
from switchyard.common.config.model import Listener, ServiceAddresses, endpoints_of
from switchyard.common.config.sections import SERVICE_ENV

# Hosts that are this machine whatever it is called; a wildcard bind takes every address.
LOCAL = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""}


def check_port_clashes(rep: Report, listener: Listener, services: ServiceAddresses) -> None:
    """Two of listener/router/providers/state on one port of one host cannot both bind.
    Only addresses the file or environment names count (`switchyard up` gives the others
    private unix sockets); hosts are compared as written, local names as one."""
    taken: list[tuple[str, str, int, str]] = [
        ("the model listener", _host(listener.address), listener.port,
         f"listeners: {listener.address}:{listener.port}")]
    for service, var in SERVICE_ENV.items():
        if service not in services.named:
            continue
        source = f"environment variable {var}" if os.environ.get(var) else f"services.{service}"
        for endpoint in endpoints_of(str(getattr(services, service))):
            hp = _host_port(endpoint)
            if hp is None:
                continue
            host, port = hp
            for what, other_host, other_port, other_source in taken:
                if port == other_port and _same_host(host, other_host):
                    rep.add(source, f"the {service} service's address {endpoint} uses port "
                                    f"{port}, which {what} also uses ({other_source}); give "
                                    "each its own port")
                    break
            else:
                taken.append((f"the {service} service", host, port,
                              f"{source}: {endpoint}"))


def _host_port(endpoint: str) -> tuple[str, int] | None:
    """host and port of `host:port` or `dns:///host:port`; None for unix sockets and the rest."""
    if endpoint.startswith("dns:"):
        endpoint = endpoint[len("dns:"):].lstrip("/").rpartition("/")[2]
    if endpoint.startswith("unix:") or "://" in endpoint:
        return None
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return _host(host), int(port)


def _host(host: str) -> str:
    return host.strip("[]").lower()


def _same_host(a: str, b: str) -> bool:
    if a == b:
        return True
    local_a = a in LOCAL or a.startswith("127.")
    local_b = b in LOCAL or b.startswith("127.")
    return local_a and local_b
