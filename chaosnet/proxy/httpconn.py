"""The control API's HTTP connections: bounded in time and number, every answer JSON.

aiohttp's defaults suit a public web server behind a reverse proxy; the control
API shares its one event loop with every proxied connection, so each
connection here is bounded:

- *idle and header-read time*: a connection that has not sent a complete request
  line and headers ``idle_timeout`` seconds after it opened (or after its last
  answer) is closed -- aiohttp's keep-alive timer, which runs from the accept;
- *body-read time*: :func:`read_body` gives up after ``BODY_TIMEOUT_S`` with a 408;
- *number*: beyond ``MAX_CONNECTIONS`` open API connections, the oldest idle one
  is closed, so idle clients can never take every descriptor and ``/version``
  always gets in;
- *half-close*: a request followed by ``shutdown(SHUT_WR)`` is answered, then the
  connection closes (asyncio would close the transport at the EOF);
- *no decompression*: bodies are taken as sent (``guards.py`` refuses encoded
  ones), so no inflation ever runs on the loop;
- *parser errors*: aiohttp's own 400s for a malformed request line, method,
  target or header, and the errors raised before any middleware runs (an
  unknown ``Expect``: 417), are answered as ``{"error": ..., "status": ...}``
  JSON like every other error, instead of text/plain.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_protocol import _RequestHandler as RequestHandlerFunc
from aiohttp.web_request import BaseRequest

from chaosnet.proxy.errors import ApiError

IDLE_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 256
REQUEST_TIMEOUT = 408


def error_body(status: int, message: str) -> bytes:
    return json.dumps(ApiError(status, message).to_json()).encode()


class ApiConnection(RequestHandler):
    """One API connection: JSON parser errors, half-close answered."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # an answer is under way: nothing to add
            raise ConnectionError("response already started")
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        text = message or (str(exc) if exc is not None else "") or phrase
        if status >= 500:
            self.log_exception("Error handling request", exc_info=exc)
        response = web.Response(
            status=status, body=error_body(status, text), content_type="application/json"
        )
        response.force_close()
        return response

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio.Protocol's
        """The client half-closed: answer what it asked, then close (None closes now)."""
        if self.busy:
            self.close()
            return True
        return None

    @property
    def busy(self) -> bool:
        """A request is queued or being handled (not waiting for the next one)."""
        waiting = self._waiter is not None or self._request_count == 0
        return bool(self._messages) or self._request_in_progress or not waiting


class ApiHttpServer(web.Server):
    """aiohttp's server with :class:`ApiConnection` and a cap on open connections."""

    def __init__(self, *args: Any, max_connections: int = MAX_CONNECTIONS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_connections = max_connections
        self._order: OrderedDict[RequestHandler, None] = OrderedDict()

    def __call__(self) -> RequestHandler:
        return ApiConnection(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._order[handler] = None
        if len(self._order) > self._max_connections:
            self._close_oldest_idle()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self._order.pop(handler, None)
        super().connection_lost(handler, exc)

    def _close_oldest_idle(self) -> None:
        for handler in self._order:
            if isinstance(handler, ApiConnection) and not handler.busy:
                del self._order[handler]
                handler.force_close()
                if handler.transport is not None:
                    handler.transport.close()
                return


class ApiRunner(web.AppRunner):
    """An AppRunner whose server is :class:`ApiHttpServer`, with the bounds above."""

    def __init__(
        self,
        app: web.Application,
        *,
        idle_timeout: float = IDLE_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, keepalive_timeout=idle_timeout, auto_decompress=False, **kwargs)
        self._max_connections = max_connections

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts and freezes the app
        return ApiHttpServer(
            _json_http_errors(plain.request_handler),
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            max_connections=self._max_connections,
            **plain._kwargs,
        )


def _json_http_errors(handler: RequestHandlerFunc) -> RequestHandlerFunc:
    """What escapes the application (its ``Expect`` check runs before any middleware)."""

    async def handle(request: BaseRequest) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return web.Response(
                status=exc.status,
                body=error_body(exc.status, exc.text or exc.reason),
                content_type="application/json",
            )

    return handle


async def read_body(request: web.Request, timeout: float = BODY_TIMEOUT_S) -> bytes:
    """The request body, or a 408 if the client does not send it within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise ApiError(REQUEST_TIMEOUT, f"request body not received within {timeout:g} s") from None
