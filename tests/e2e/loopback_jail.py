"""Run a client program where the gateway is the only thing it can reach.

`LoopbackJail.run(cmd)` starts `cmd` in a fresh network namespace (and mount namespace) that
has nothing but a loopback interface, so nothing it does can leave the machine. Inside it:
- 127.0.0.1:<port> forwards to the gateway, over a unix socket (files are shared across
  network namespaces) and a bridge in the test process that counts the connections;
- HTTP(S)_PROXY / ALL_PROXY point at a trap that records every request line (CONNECT host)
  and refuses it, and /etc/resolv.conf is bind-mounted to name a DNS trap on 127.0.0.1 that
  records every name looked up and answers REFUSED;
so a test can assert that the program tried no other destination at all, not only that it
could not reach one. `python -m tests.e2e.loopback_jail` is the in-namespace side.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parents[2]
DNS_PORT = 53
_BUF = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                first: list[bytes] | None = None) -> None:
    try:
        while data := await reader.read(_BUF):
            if first is not None and not first:
                first.append(data)  # the opening bytes, for the bridge's connection log
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _splice(a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                  b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                  seen: tuple[list[bytes], list[bytes]] | None = None) -> None:
    """Copy a -> b and b -> a until both ends close (`seen`: each direction's first bytes)."""
    await asyncio.gather(_pipe(a[0], b[1], seen[0] if seen else None),
                         _pipe(b[0], a[1], seen[1] if seen else None))


@dataclass
class Exchange:
    """The first request on one connection to the gateway, and the first answer's status."""
    request_line: str
    upgrade: str        # the Upgrade header's value ("websocket"), or ""
    status: int | None  # None: no answer


def _exchange(sent: list[bytes], got: list[bytes]) -> Exchange:
    head = sent[0].split(b"\r\n\r\n", 1)[0].decode(errors="replace") if sent else ""
    lines = head.split("\r\n")
    upgrade = next((v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
                    if k.strip().lower() == "upgrade"), "")
    status = None
    if got and got[0].startswith(b"HTTP/"):
        status = int(got[0].split(b" ", 2)[1])
    return Exchange(lines[0], upgrade.lower(), status)


class UnixBridge:
    """Test-process side: a unix socket whose every connection is spliced to 127.0.0.1:port."""

    def __init__(self, path: pathlib.Path, port: int) -> None:
        self.path, self.port = path, port
        self.connections = 0
        self.exchanges: list[Exchange] = []
        self._open = 0
        self._idle = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="unix-bridge",
                                        daemon=True)
        self._server: asyncio.base_events.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._idle:
            self.connections += 1
            self._open += 1
        sent: list[bytes] = []
        got: list[bytes] = []
        try:
            upstream = await asyncio.open_connection("127.0.0.1", self.port)
            await _splice((reader, writer), upstream, (sent, got))
        except OSError:
            writer.close()
        finally:
            with self._idle:
                self.exchanges.append(_exchange(sent, got))
                self._open -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        """Wait until every connection so far has closed and been logged."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._open == 0, timeout):
                raise AssertionError(f"{self._open} gateway connection(s) still open after "
                                     f"{timeout}s")

    def start(self) -> UnixBridge:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_unix_server(self._handle, path=str(self.path)), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@dataclass
class JailResult:
    returncode: int
    stdout: str
    stderr: str
    proxy_requests: list[str] = field(default_factory=list)  # request lines the trap saw
    dns_queries: list[str] = field(default_factory=list)     # names looked up
    gateway_connections: int = 0
    exchanges: list[Exchange] = field(default_factory=list)  # each connection's first request


def _netns_prefix() -> list[str]:
    """unshare for a new network + mount namespace (a user namespace too when not root)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise AssertionError("unshare (util-linux) is needed to run the CLIs in a sandbox")
    flags = ["--net", "--mount"] if os.geteuid() == 0 else ["--user", "--map-root-user",
                                                               "--net", "--mount"]
    return [unshare, *flags]


class LoopbackJail:
    """Run commands with the gateway at 127.0.0.1:`port` and nothing else reachable."""

    def __init__(self, gateway_port: int, workdir: pathlib.Path) -> None:
        self.port = gateway_port
        self.workdir = workdir
        self._sockdir = pathlib.Path(tempfile.mkdtemp(prefix="jail-", dir="/tmp"))
        self.bridge = UnixBridge(self._sockdir / "gateway.sock", gateway_port)

    def __enter__(self) -> LoopbackJail:
        self.bridge.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bridge.stop()
        shutil.rmtree(self._sockdir, ignore_errors=True)

    def run(self, cmd: list[str], *, env: dict[str, str], cwd: pathlib.Path,
            timeout: float) -> JailResult:
        """Run `cmd` in the jail (bounded by `timeout`); its output and what the traps saw."""
        log = self._sockdir / f"trap-{os.getpid()}-{id(cmd)}.log"
        before, seen = self.bridge.connections, len(self.bridge.exchanges)
        inner = [sys.executable, "-m", "tests.e2e.loopback_jail", "--port", str(self.port),
                 "--socket", str(self.bridge.path), "--trap-log", str(log), "--", *cmd]
        env = {**env, "PYTHONPATH": str(ROOT)}
        try:
            proc = subprocess.run([*_netns_prefix(), *inner], env=env, cwd=cwd,
                                  capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"{cmd[0]} did not finish in {timeout}s\nstdout: {e.stdout!r}"
                                 f"\nstderr: {e.stderr!r}") from None
        self.bridge.wait_idle(10)  # the CLI has exited: its connections are closing
        proxy, dns = [], []
        if log.exists():
            for line in log.read_text().splitlines():
                kind, _, what = line.partition(" ")
                (proxy if kind == "proxy" else dns).append(what)
        return JailResult(proc.returncode, proc.stdout, proc.stderr, proxy, dns,
                          self.bridge.connections - before, self.bridge.exchanges[seen:])


# ---- the in-namespace side ------------------------------------------------------------------

def _dns_name(packet: bytes) -> str:
    """The first question's name of a DNS query."""
    labels, i = [], 12
    while i < len(packet) and packet[i]:
        n = packet[i]
        labels.append(packet[i + 1:i + 1 + n].decode(errors="replace"))
        i += 1 + n
    return ".".join(labels)


def _refused(packet: bytes) -> bytes:
    """The query echoed back as a REFUSED answer (QR set, RCODE 5, no records)."""
    return packet[:2] + bytes([0x80 | (packet[2] & 0x01), 0x05]) + packet[4:6] + b"\0" * 6 + \
        packet[12:]


class _Traps:
    def __init__(self, log: pathlib.Path) -> None:
        self._log = log
        self._lock = threading.Lock()

    def record(self, kind: str, what: str) -> None:
        with self._lock, self._log.open("a") as f:
            f.write(f"{kind} {what}\n")

    async def proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            line = await asyncio.wait_for(reader.readline(), 5)
            self.record("proxy", line.decode(errors="replace").strip())
            writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
        writer.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.record("dns", _dns_name(data))
        self.transport.sendto(_refused(data), addr)

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport

    def error_received(self, exc: Exception) -> None:  # a UDP send error: nothing to do
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        pass


def _loopback_up() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def _mount_resolv_conf(tmp: pathlib.Path) -> None:
    """Point the resolver at the DNS trap; the mount lives only in this mount namespace."""
    conf = tmp / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
    subprocess.run(["mount", "--bind", str(conf), "/etc/resolv.conf"], check=True)


async def _serve(args: argparse.Namespace, traps: _Traps, ready: threading.Event,
                 ports: dict[str, int]) -> None:
    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await asyncio.open_unix_connection(args.socket)
        except OSError:
            writer.close()
            return
        await _splice((reader, writer), upstream)

    loop = asyncio.get_running_loop()
    await asyncio.start_server(forward, "127.0.0.1", args.port)
    proxy = await asyncio.start_server(traps.proxy, "127.0.0.1", 0)
    ports["proxy"] = proxy.sockets[0].getsockname()[1]
    await loop.create_datagram_endpoint(lambda: traps, local_addr=("127.0.0.1", DNS_PORT),
                                        family=socket.AF_INET)
    ready.set()
    await asyncio.Event().wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--trap-log", required=True)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="jail-ns-"))
    _loopback_up()
    _mount_resolv_conf(tmp)
    traps = _Traps(pathlib.Path(args.trap_log))
    ready, ports = threading.Event(), {}
    loop = asyncio.new_event_loop()
    threading.Thread(target=lambda: loop.run_until_complete(_serve(args, traps, ready, ports)),
                     daemon=True).start()
    if not ready.wait(10):
        print("loopback_jail: the forwarder and traps did not start", file=sys.stderr)
        return 125
    proxy = f"http://127.0.0.1:{ports['proxy']}"
    env = {**os.environ}
    env.pop("PYTHONPATH", None)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = proxy
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return subprocess.run(cmd, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
