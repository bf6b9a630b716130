"""The real Toxiproxy server binary, started as a subprocess on a port of its own choosing.

``toxiproxy-server -port 0`` logs the port it was asked for (0), not the one it
got, so the bound port is read from the process's listening socket
(``Listening``). No port is ever picked in advance, so parallel workers cannot
race for one. Like every server chaosnet starts, it dies with the test process.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from chaosnet.errors import ChaosnetError
from chaosnet.servers.errors import ServerError
from chaosnet.servers.process import ServerProcess
from chaosnet.servers.readiness import HttpOk, Listening

BINARY_NAME = "toxiproxy-server"
START_TIMEOUT_S = 10.0


def find_toxiproxy(binary: Path | None) -> Path:
    """The explicit binary, else ``toxiproxy-server`` on PATH; a clear error if neither."""
    if binary is not None:
        if not binary.is_file():
            raise ChaosnetError(f"toxiproxy binary not found: {binary}")
        return binary
    found = shutil.which(BINARY_NAME)
    if found is None:
        raise ChaosnetError(
            f"{BINARY_NAME} is not on PATH; install it with "
            "`go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0` "
            "(and rename it) or pass its path (--chaosnet-toxiproxy-bin / --toxiproxy-bin)"
        )
    return Path(found)


class ToxiproxyBackend:
    name = "toxiproxy"

    def __init__(self, binary: Path | None = None, args: Sequence[str] = ()) -> None:
        self._binary = binary
        self._args = tuple(args)  # more toxiproxy-server flags, e.g. -proxy-metrics
        self._process: ServerProcess | None = None

    @property
    def url(self) -> str:
        if self._process is None:
            raise ChaosnetError("toxiproxy backend is not started")
        host, port = self._process.address
        return f"http://{host}:{port}"

    def start(self) -> None:
        process = ServerProcess(
            [str(find_toxiproxy(self._binary)), "-host", "127.0.0.1", "-port", "0", *self._args],
            name=BINARY_NAME,
            ready=[Listening(), HttpOk("/version")],
            ready_timeout=START_TIMEOUT_S,
        )
        try:
            process.start()
        except ServerError as exc:
            raise ChaosnetError(f"toxiproxy backend did not start: {exc}") from None
        self._process = process

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.stop()

    def take_errors(self) -> list[BaseException]:
        if self._process is not None and self._process.crashed:
            return [ChaosnetError(f"toxiproxy-server crashed:\n{self._process.log_tail()}")]
        return []

    def log_tail(self, lines: int = 40) -> str:
        return self._process.log_tail(lines) if self._process is not None else ""
