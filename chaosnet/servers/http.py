"""The builtin ``http`` server: a small HTTP/1.1 server on aiohttp, with keep-alive.

Endpoints (any method unless said otherwise):

- ``/`` -- 200 ``ok``;
- ``/echo`` -- 200 with the request body as the response body (same Content-Type);
- ``/status/{code}`` -- that status (100-599 except 1xx), body ``status {code}``
  unless the status has none (204, 304);
- ``/wait/{ms}`` -- waits that long (at most a minute), then 200 ``waited {ms}``;
- ``/bytes/{n}`` -- 200 with ``n`` bytes (``Content-Length``);
- ``/stream/{n}`` -- 200 with ``n`` bytes sent chunked (``?chunk=`` bytes per chunk,
  default 1024), each chunk written and drained before the next;
- ``/count`` -- 200 with the number of requests served before this one, as text: the
  server's side of "how many requests really arrived".

Bodies of ``/bytes`` and ``/stream`` are ``0123456789`` repeated, so a client can check
what it got. Sizes are capped at 1 GiB.
"""

from __future__ import annotations

import asyncio
from typing import cast

from aiohttp import web

from chaosnet.servers.builtin_runtime import ProtocolFactory, ServerContext

MAX_WAIT_MS = 60_000
MAX_BYTES = 1 << 30
PATTERN = b"0123456789" * 6554  # 65,540 bytes: any run is cut from it


def payload(size: int) -> bytes:
    """``size`` bytes of the repeating pattern."""
    whole, rest = divmod(size, len(PATTERN))
    return PATTERN * whole + PATTERN[:rest]


class Endpoints:
    """The request handler, with the count of requests served."""

    def __init__(self) -> None:
        self.served = 0

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        name, argument = parts[0], parts[1] if len(parts) == 2 else None
        if name == "count" and argument is None:
            return web.Response(text=str(self.served))
        self.served += 1
        if name == "" and len(parts) == 1:
            return web.Response(text="ok")
        if name == "echo" and argument is None:
            body = await request.read()
            return web.Response(body=body, content_type=request.content_type)
        if argument is None or not argument.isdigit():
            return web.Response(status=404, text=f"no such endpoint: {request.path}")
        number = int(argument)
        if name == "status" and 200 <= number <= 599:
            return web.Response(
                status=number, text=None if number in (204, 304) else f"status {number}"
            )
        if name == "wait" and number <= MAX_WAIT_MS:
            await asyncio.sleep(number / 1000)
            return web.Response(text=f"waited {number}")
        if name == "bytes" and number <= MAX_BYTES:
            return web.Response(body=payload(number), content_type="application/octet-stream")
        if name == "stream" and number <= MAX_BYTES:
            return await self._stream(request, number)
        return web.Response(status=404, text=f"no such endpoint: {request.path}")

    async def _stream(self, request: web.BaseRequest, size: int) -> web.StreamResponse:
        chunk_text = request.query.get("chunk", "1024")
        if not chunk_text.isdigit() or int(chunk_text) < 1:
            return web.Response(
                status=400, text=f"chunk: must be a whole number >= 1, got {chunk_text!r}"
            )
        chunk = int(chunk_text)
        response = web.StreamResponse()
        response.content_type = "application/octet-stream"
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        while sent < size:
            piece = payload(sent % 10 + min(chunk, size - sent))[sent % 10 :]
            await response.write(piece)
            sent += len(piece)
        await response.write_eof()
        return response


class HttpProtocol(asyncio.Protocol):
    """aiohttp's per-connection handler, with the builtin servers' connection bookkeeping."""

    def __init__(self, ctx: ServerContext, handler: asyncio.Protocol) -> None:
        self.ctx = ctx
        self.handler = handler
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.ctx.transports.add(self.transport)
        self.handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received()

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.ctx.transports.discard(self.transport)
        self.handler.connection_lost(exc)


def http_factory() -> ProtocolFactory:
    """The protocol factory ``serve()`` calls per connection (one aiohttp server behind it)."""
    endpoints = Endpoints()
    server: web.Server | None = None

    def factory(ctx: ServerContext) -> asyncio.Protocol:
        nonlocal server
        if server is None:  # created on the loop, on the first connection
            server = web.Server(endpoints, access_log=None)
        return HttpProtocol(ctx, cast(asyncio.Protocol, server()))

    return factory
