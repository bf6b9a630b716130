"""The processes a benchmark run needs, and the three paths every figure is taken on.

- ``direct``: the client talks to the upstream itself (the floor/ceiling);
- ``chaosnet``: ``chaosnet serve`` in its own process (uvloop when installed);
- ``toxiproxy``: the real ``toxiproxy-server`` in its own process, as shipped.

The upstream servers (``benchmarks.upstream``) run in a third process, and the
load generator is this process, so no proxy shares a GIL with what measures it.
Every process is a :class:`~chaosnet.servers.ServerProcess`: its own process
group, killed with us even on SIGKILL (``PR_SET_PDEATHSIG``), and stopped by
``Environment.__exit__`` on any error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from benchmarks.upstream import READY_LINE
from chaosnet.backends.toxiproxy import find_toxiproxy
from chaosnet.control import Address, ControlClient
from chaosnet.errors import ChaosnetError
from chaosnet.servers.process import ServerProcess
from chaosnet.servers.readiness import Listening, LogLine

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOXIPROXY = ROOT / ".tools" / "bin" / "toxiproxy-server"
CONTROL_TIMEOUT_S = 5.0  # a control request slower than this counts as a hang
DIRECT, CHAOSNET, TOXIPROXY = "direct", "chaosnet", "toxiproxy"
PATHS = (DIRECT, CHAOSNET, TOXIPROXY)
PROXIED = (CHAOSNET, TOXIPROXY)


@dataclass(frozen=True)
class Toxic:
    type: str
    attributes: Mapping[str, Any]
    stream: str = "downstream"


@dataclass
class Upstreams:
    echo: Address
    source: Address
    bulk_sink: Address
    bulk_source: Address
    udp_echo: Address
    udp_sink: Address
    drain: Address


@dataclass
class ProxyServer:
    """A proxy implementation under test: its process and a control client for it."""

    name: str
    process: ServerProcess
    client: ControlClient = field(init=False)

    def __post_init__(self) -> None:
        self.connect()

    def connect(self) -> None:
        host, port = self.process.address
        self.client = ControlClient(
            f"http://{host}:{port}", backend=self.name, timeout=CONTROL_TIMEOUT_S
        )

    @property
    def pid(self) -> int:
        return self.process.pid


def python_env() -> dict[str, str]:
    """chaosnet and benchmarks importable in a child run from the source tree."""
    current = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), current) if p)}


def chaosnet_serve() -> ServerProcess:
    argv = [sys.executable, "-m", "chaosnet.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
    ready = LogLine(r"listening on http://(?P<host>[0-9.]+):(?P<port>\d+)")
    return ServerProcess(argv, name="chaosnet-serve", ready=ready, env=python_env())


def toxiproxy_server(binary: Path) -> ServerProcess:
    argv = [str(binary), "-host", "127.0.0.1", "-port", "0"]
    return ServerProcess(argv, name="toxiproxy-server", ready=Listening())


def toxiproxy_version(binary: Path) -> str:
    done = subprocess.run(
        [str(binary), "-version"], capture_output=True, text=True, timeout=10, check=False
    )
    return (done.stdout or done.stderr).strip().split()[-1] if done.returncode == 0 else "?"


def locate_toxiproxy(explicit: Path | None) -> Path | None:
    """The binary to compare against, or None (the run goes on without it, and says so)."""
    if explicit is not None:
        return find_toxiproxy(explicit)
    if DEFAULT_TOXIPROXY.is_file():
        return DEFAULT_TOXIPROXY
    try:
        return find_toxiproxy(None)
    except ChaosnetError:
        return None


class Environment:
    """Upstream, chaosnet and Toxiproxy processes for one run; a context manager."""

    def __init__(self, toxiproxy_bin: Path | None) -> None:
        self.toxiproxy_bin = toxiproxy_bin
        self.servers: dict[str, ProxyServer] = {}
        self.upstreams: Upstreams | None = None
        self._stack = ExitStack()
        self._names = itertools.count(1)

    @property
    def paths(self) -> tuple[str, ...]:
        return (DIRECT, *self.servers)

    @property
    def proxied(self) -> tuple[str, ...]:
        return tuple(self.servers)

    def __enter__(self) -> Environment:
        try:
            self.upstreams = self._start_upstream()
            self._add(CHAOSNET, chaosnet_serve())
            if self.toxiproxy_bin is not None:
                self._add(TOXIPROXY, toxiproxy_server(self.toxiproxy_bin))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for server in self.servers.values():
            server.client.close()
        self._stack.close()

    def _start_upstream(self) -> Upstreams:
        process = ServerProcess(
            [sys.executable, "-m", "benchmarks.upstream"],
            name="bench-upstream",
            ready=LogLine(rf"^{READY_LINE}$"),
            env=python_env(),
        )
        self._stack.enter_context(process)
        found: dict[str, Address] = {}
        for line in process.log_text().splitlines():
            words = line.split()
            if len(words) == 3 and words[0] == "upstream":
                host, port = words[2].rsplit(":", 1)
                found[words[1]] = (host, int(port))
        return Upstreams(**found)

    def _add(self, name: str, process: ServerProcess) -> None:
        self._stack.enter_context(process)
        self.servers[name] = ProxyServer(name, process)
        self.servers[name].client.version()  # answers, or a clear error now

    def restart(self, name: str) -> None:
        """A server that hung gets a fresh process, so the figures after it still run."""
        server = self.servers[name]
        server.client.close()
        server.process.stop(grace=1.0)
        server.process.start()
        server.connect()

    def upstream(self) -> Upstreams:
        assert self.upstreams is not None
        return self.upstreams

    @contextmanager
    def proxies(
        self, upstream: Address, toxics: Sequence[Toxic] = (), paths: Sequence[str] = ()
    ) -> Iterator[dict[str, Address]]:
        """Where each path's client connects: the upstream itself, or a fresh proxy to it
        (with ``toxics``; the direct path gets none). Proxies are deleted on exit."""
        wanted = paths or self.paths
        addresses: dict[str, Address] = {}
        made: list[tuple[ProxyServer, str]] = []
        try:
            for path in wanted:
                if path == DIRECT:
                    addresses[path] = upstream
                    continue
                server = self.servers[path]
                name = f"bench{next(self._names)}"
                info = server.client.create_proxy(name, f"{upstream[0]}:{upstream[1]}")
                made.append((server, name))
                for number, toxic in enumerate(toxics):
                    server.client.add_toxic(
                        name,
                        toxic.type,
                        stream=toxic.stream,
                        name=f"t{number}",
                        attributes=dict(toxic.attributes),
                    )
                addresses[path] = info.address
            yield addresses
        finally:
            for server, name in made:
                # a hung server is restarted by whoever saw it hang
                with contextlib.suppress(ChaosnetError):
                    server.client.delete_proxy(name)
