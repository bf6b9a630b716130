"""The control API: Toxiproxy v2.12's HTTP API plus chaosnet's extensions, on aiohttp.

Endpoints (as Toxiproxy): ``GET /version``; ``GET``/``POST /proxies``;
``POST /populate``; ``POST /reset``; ``GET``/``POST``/``PATCH``/``DELETE
/proxies/{name}``; ``GET``/``POST /proxies/{name}/toxics``;
``GET``/``POST``/``PATCH``/``DELETE /proxies/{name}/toxics/{toxic}``; ``GET
/metrics`` only when metrics are enabled (``metrics.py``). ``/version`` answers
Toxiproxy's body byte for byte, and every response carries Toxiproxy's
``X-Toxiproxy-Request-Id`` header.
Extensions: ``GET /chaosnet`` (``{"version", "toxiproxy_api", "extensions",
"seed"}``; Toxiproxy answers 404, which is how a client tells them apart),
the ``X-Chaosnet-Version`` header on every response, and ``GET
/proxies/{name}/connections`` (see ``connlog.py``), ``GET
/proxies/{name}/messages`` (``?connection=ID`` for one; see ``messages.py``) and a
proxy's ``protocol``/``protocol_options``.

Every error is JSON ``{"error": "...", "status": N}`` (plus ``detail`` where
chaosnet knows more than Toxiproxy's fixed message, see ``errors.py``) -- also
403 (browsers and cross-site requests, see ``guards.py``), 404 for unknown
paths, 405, 413 (bodies over 1 MiB) and aiohttp's own parser errors
(``httpconn.py``), where Toxiproxy answers in plain text. An unexpected exception becomes a 500 and
is reported to the engine's error list; the server keeps serving.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from chaosnet.proxy import bodies
from chaosnet.proxy.addresses import parse_decimal
from chaosnet.proxy.engine import Engine, PopulateError
from chaosnet.proxy.errors import TOO_LARGE, ApiError, bad_request
from chaosnet.proxy.httpconn import read_body
from chaosnet.proxy.metrics import CONTENT_TYPE, Metrics, MetricsOptions
from chaosnet.proxy.toxics import EXTENSION_TYPES
from chaosnet.proxy.toxics.base import EXTENSION_FIELDS, MAX_BYTES
from chaosnet.version import __version__

TOXIPROXY_API_VERSION = "2.12.0"
#: ``GET /version``'s body, byte for byte as toxiproxy-server writes it (clients compare it).
VERSION_BODY = f'{{"version": "{TOXIPROXY_API_VERSION}"}}\n'.encode()
VERSION_CONTENT_TYPE = "application/json;charset=utf-8"
REQUEST_ID_HEADER = "X-Toxiproxy-Request-Id"
CHAOSNET_HEADER = "X-Chaosnet-Version"
MAX_BODY = 1 << 20
MAX_WAIT_MS = 60_000  # a connection-log wait never holds a request longer
INTERNAL_ERROR = 500
#: Extension features announced in ``GET /chaosnet`` (toxic types, toxic fields, endpoints).
EXTENSIONS = (*EXTENSION_TYPES, *EXTENSION_FIELDS, "connections", "udp", "protocol", "messages")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def error_response(status: int, message: str) -> web.Response:
    return json_response({"error": message, "status": status}, status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response(exc.to_json(), exc.status)
    except web.HTTPRequestEntityTooLarge:
        return error_response(TOO_LARGE, f"request body larger than {MAX_BODY} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, f"{exc.reason}: {request.method} {request.path}")
    except Exception as exc:
        request.app[ENGINE].report(exc)
        return error_response(INTERNAL_ERROR, f"internal error: {exc!r}")


async def identify(request: web.Request, response: web.StreamResponse) -> None:
    """Toxiproxy's request id (a fresh random one per request) and chaosnet's version."""
    response.headers[REQUEST_ID_HEADER] = secrets.token_hex(10)
    response.headers[CHAOSNET_HEADER] = __version__


async def read_json(request: web.Request) -> Any:
    return bodies.parse_json(await read_body(request))


class Handlers:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def version(self, request: web.Request) -> web.Response:
        return web.Response(body=VERSION_BODY, headers={"Content-Type": VERSION_CONTENT_TYPE})

    async def chaosnet(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "version": __version__,
                "toxiproxy_api": TOXIPROXY_API_VERSION,
                "extensions": list(EXTENSIONS),
                "seed": self.engine.seed,
            }
        )

    async def proxies(self, request: web.Request) -> web.Response:
        return json_response({name: p.to_json() for name, p in self.engine.proxies.items()})

    async def create_proxy(self, request: web.Request) -> web.Response:
        config = bodies.proxy_config(await read_json(request))
        proxy = await self.engine.create(config)
        return json_response(proxy.to_json(), 201)

    async def populate(self, request: web.Request) -> web.Response:
        configs = bodies.populate_configs(await read_json(request))
        try:
            done = await self.engine.populate(configs)
        except PopulateError as exc:
            body = {**exc.to_json(), "proxies": [p.to_json() for p in exc.done]}
            return json_response(body, exc.status)
        return json_response({"proxies": [p.to_json() for p in done]}, 201)

    async def reset(self, request: web.Request) -> web.Response:
        await self.engine.reset()
        return no_content()

    async def show_proxy(self, request: web.Request) -> web.Response:
        return json_response(self.engine.get(request.match_info["proxy"]).to_json())

    async def update_proxy(self, request: web.Request) -> web.Response:
        proxy = self.engine.get(request.match_info["proxy"])
        listen, upstream, enabled, protocol = bodies.proxy_update(await read_json(request))
        await proxy.update(listen, upstream, enabled, protocol)
        return json_response(proxy.to_json())

    async def delete_proxy(self, request: web.Request) -> web.Response:
        await self.engine.delete(request.match_info["proxy"])
        return no_content()

    async def toxics(self, request: web.Request) -> web.Response:
        return json_response(self.engine.get(request.match_info["proxy"]).toxics_json())

    async def create_toxic(self, request: web.Request) -> web.Response:
        proxy = self.engine.get(request.match_info["proxy"])
        spec = bodies.new_toxic(await read_json(request), proxy.check_fits)
        await proxy.add_toxic(spec)
        return json_response(spec.to_json())

    async def show_toxic(self, request: web.Request) -> web.Response:
        proxy = self.engine.get(request.match_info["proxy"])
        return json_response(proxy.get_toxic(request.match_info["toxic"]).to_json())

    async def update_toxic(self, request: web.Request) -> web.Response:
        proxy = self.engine.get(request.match_info["proxy"])
        spec = proxy.get_toxic(request.match_info["toxic"])
        body = await read_json(request)
        bodies.apply_toxic_update(spec, body, lambda new: proxy.check_toxic(new, proxy.protocol))
        await proxy.toxic_changed(spec)
        return json_response(spec.to_json())

    async def delete_toxic(self, request: web.Request) -> web.Response:
        proxy = self.engine.get(request.match_info["proxy"])
        await proxy.remove_toxic(request.match_info["toxic"])
        return no_content()

    async def connections(self, request: web.Request) -> web.Response:
        log = self.engine.get(request.match_info["proxy"]).log
        wait = _connection_wait(request.query)
        if wait is not None:
            await log.wait_open(*wait)
        return json_response(log.to_json())

    async def messages(self, request: web.Request) -> web.Response:
        proxy = self.engine.get(request.match_info["proxy"])
        text = request.query.get("connection")
        if text is not None and not text.isdigit():
            raise bad_request(f"connection: must be a connection id (an integer), got {text!r}")
        return json_response(proxy.messages.to_json(None if text is None else int(text)))


def _connection_wait(query: Mapping[str, str]) -> tuple[int, float] | None:
    """``?wait_open=N&timeout_ms=T``: wait for N open connections, at most T ms (<= 60 s)."""
    if "wait_open" not in query:
        return None
    count = parse_decimal(query["wait_open"], "wait_open", maximum=MAX_BYTES)
    timeout = parse_decimal(query.get("timeout_ms", "1000"), "timeout_ms", maximum=MAX_WAIT_MS)
    return count, timeout / 1000


def _metrics_handler(metrics: Metrics) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    return handler


def build_app(engine: Engine, metrics: MetricsOptions | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[errors_middleware])
    app[ENGINE] = engine
    app.on_response_prepare.append(identify)
    h = Handlers(engine)
    proxy, toxic = "/proxies/{proxy}", "/proxies/{proxy}/toxics/{toxic}"
    app.router.add_get("/version", h.version)
    app.router.add_get("/chaosnet", h.chaosnet)
    if metrics is not None and metrics.enabled:
        app.router.add_get("/metrics", _metrics_handler(Metrics(engine, metrics)))
    app.router.add_get("/proxies", h.proxies)
    app.router.add_post("/proxies", h.create_proxy)
    app.router.add_post("/populate", h.populate)
    app.router.add_post("/reset", h.reset)
    app.router.add_get(proxy, h.show_proxy)
    app.router.add_post(proxy, h.update_proxy)
    app.router.add_patch(proxy, h.update_proxy)
    app.router.add_delete(proxy, h.delete_proxy)
    app.router.add_get(proxy + "/connections", h.connections)
    app.router.add_get(proxy + "/messages", h.messages)
    app.router.add_get(proxy + "/toxics", h.toxics)
    app.router.add_post(proxy + "/toxics", h.create_toxic)
    app.router.add_get(toxic, h.show_toxic)
    app.router.add_post(toxic, h.update_toxic)
    app.router.add_patch(toxic, h.update_toxic)
    app.router.add_delete(toxic, h.delete_toxic)
    return app
