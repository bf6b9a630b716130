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

from chaosnet.backends.served import ServedBackend
from chaosnet.errors import ChaosnetError
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


class ToxiproxyBackend(ServedBackend[ServerProcess]):
    name = "toxiproxy"

    def __init__(self, binary: Path | None = None, args: Sequence[str] = ()) -> None:
        super().__init__()
        self._binary = binary
        self._args = tuple(args)  # more toxiproxy-server flags, e.g. -proxy-metrics

    def new_server(self) -> ServerProcess:
        return ServerProcess(
            [str(find_toxiproxy(self._binary)), "-host", "127.0.0.1", "-port", "0", *self._args],
            name=BINARY_NAME,
            ready=[Listening(), HttpOk("/version")],
            ready_timeout=START_TIMEOUT_S,
        )

    def crash_title(self) -> str:
        return f"{BINARY_NAME} crashed"
