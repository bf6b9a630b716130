"""Raw HTTP/1.1 over a socket, for requests no well-behaved client library would send."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

Address = tuple[str, int]
IO_TIMEOUT_S = 5.0


@dataclass
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(address: Address, data: bytes, *, half_close: bool = False) -> RawReply | None:
    """Send ``data``, read until the server closes; None if it closed without answering."""
    start = time.monotonic()
    with socket.create_connection(address, timeout=IO_TIMEOUT_S) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    if not received:
        return None
    return parse(received, time.monotonic() - start)


def parse(received: bytes, elapsed: float) -> RawReply:
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawReply(status, headers, body, elapsed)


def request(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    host: str = "localhost",
) -> bytes:
    """A request that closes the connection after its answer."""
    fields = {"Host": host, "Connection": "close", **(headers or {})}
    if body:
        fields.setdefault("Content-Length", str(len(body)))
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + body
