"""The real Toxiproxy server binary, started as a subprocess on a port of its own choosing.

``toxiproxy-server -port 0`` logs the port it was asked for (0), not the one it
got, so the bound port is read from the process's listening socket. No port is
ever picked in advance, so parallel workers cannot race for one.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from chaosnet.control import BackendUnreachable, ControlClient
from chaosnet.errors import ChaosnetError

BINARY_NAME = "toxiproxy-server"
START_TIMEOUT_S = 10.0
STOP_GRACE_S = 3.0


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

    def __init__(self, binary: Path | None = None) -> None:
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="toxiproxy-", suffix=".log")
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise ChaosnetError("toxiproxy backend is not started")
        return self._url

    def start(self) -> None:
        binary = find_toxiproxy(self._binary)
        self._process = subprocess.Popen(
            [str(binary), "-host", "127.0.0.1", "-port", "0"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            host, port = self._wait_for_listener(deadline)
            self._url = f"http://{host}:{port}"
            self._wait_until_answering(deadline)
        except BaseException:
            self.stop()
            raise

    def _wait_for_listener(self, deadline: float) -> tuple[str, int]:
        assert self._process is not None
        proc = psutil.Process(self._process.pid)
        while True:  # bounded readiness poll: the binary reports no port
            if self._process.poll() is not None:
                raise ChaosnetError(
                    f"toxiproxy-server exited with status {self._process.returncode} at start:\n"
                    f"{self.log_tail(10)}"
                )
            listening = [c.laddr for c in proc.net_connections("tcp") if c.status == "LISTEN"]
            if listening:
                return listening[0].ip, listening[0].port
            if time.monotonic() > deadline:
                raise ChaosnetError(
                    f"toxiproxy-server did not listen within {START_TIMEOUT_S:g}s:\n"
                    f"{self.log_tail(10)}"
                )
            time.sleep(0.005)

    def _wait_until_answering(self, deadline: float) -> None:
        client = ControlClient(self.url, backend=self.name, timeout=1.0)
        try:
            while True:
                try:
                    client.version()
                    return
                except BackendUnreachable:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)
        finally:
            client.close()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_GRACE_S)

    def take_errors(self) -> list[BaseException]:
        return []

    def log_tail(self, lines: int = 40) -> str:
        text = Path(self._log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])
