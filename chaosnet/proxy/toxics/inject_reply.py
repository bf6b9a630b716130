"""``inject_reply`` (chaosnet): the proxy answers the targeted requests itself.

A message toxic on the ``upstream`` stream (requests). For each targeted request
the client gets a reply made by the proxy, in its turn: replies reach the client
in request order, with pipelining too (an injected reply waits for the server's
replies to the requests before it, and the server's replies to later requests
wait for it). The reply, by protocol:

- ``http1``: ``status`` (default 503), ``headers`` (an object, e.g.
  ``{"Retry-After": "0"}``) and ``body`` (text); ``Content-Length`` is added;
- ``resp``: an error, ``-`` + ``error`` (default ``ERR injected by chaosnet``);
- ``line``: ``payload`` and the delimiter; ``length_prefix``: ``payload`` as one frame.

``forward: false`` (the default): the request never reaches the server.
``forward: true``: the server gets the request, and the reply it sends is
discarded (the client only sees the injected one) -- the "was it delivered?"
case. Attributes of another protocol are refused (a ``status`` on ``resp``).
The injected reply is sent once the whole request has passed the toxic. A reply
to an HTTP ``HEAD`` request gets no body either. The message log marks the
request ``forwarded: false`` or the discarded reply ``discarded: true``, and the
injected reply ``injected: true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, ClassVar

from chaosnet.framing import frame_format
from chaosnet.proxy.framers import PROTOCOLS
from chaosnet.proxy.framers.base import Part
from chaosnet.proxy.framers.http1 import HEAD_METHOD, Exchange
from chaosnet.proxy.toxics.base import Attr, FieldError, Pipe, Receiver, Stream, Toxic

if TYPE_CHECKING:
    from chaosnet.proxy.framers import Protocol as WireProtocol
    from chaosnet.proxy.messages import MessageSession
    from chaosnet.proxy.toxics.base import ToxicSpec

DEFAULT_STATUS = 503
DEFAULT_ERROR = "ERR injected by chaosnet"
MAX_TEXT = 1 << 20
#: Which attributes make the reply of each protocol (``forward`` goes with all).
REPLY_ATTRIBUTES = {
    "http1": ("status", "headers", "body"),
    "resp": ("error",),
    "line": ("payload",),
    "length_prefix": ("payload",),
}


class InjectReplyToxic(Toxic):
    type_name = "inject_reply"
    in_toxiproxy = False
    protocols = PROTOCOLS
    streams: ClassVar[tuple[Stream, ...]] = ("upstream",)
    summary = "answers the targeted requests itself, in order (forwarded to the server or not)"
    effect = (
        "the client gets the proxy's reply (an HTTP status with headers and body, a RESP error, "
        "a line or frame) in its turn among the replies, pipelined too; with `forward: false` "
        "the server never sees the request, with `forward: true` it does and its reply is dropped"
    )
    attributes = (
        Attr("status", "int", 0, minimum=0, maximum=599, help="http1: status code (0: 503)"),
        Attr("headers", "headers", {}, help="http1: header fields of the reply"),
        Attr("body", "text", "", maximum=MAX_TEXT, help="http1: body of the reply"),
        Attr(
            "error", "text", "", maximum=MAX_TEXT, help=f"resp: error line (empty: {DEFAULT_ERROR})"
        ),
        Attr("payload", "text", "", maximum=MAX_TEXT, help="line, length_prefix: the reply"),
        Attr(
            "forward",
            "bool",
            False,
            help="also send the request to the server (its reply is discarded)",
        ),
    )
    __slots__ = ("reply",)

    @classmethod
    def check(cls, values: Mapping[str, object]) -> None:
        status = values["status"]
        if isinstance(status, int) and 0 < status < 200:
            raise FieldError(
                f"attributes.status: must be a final status (200 to 599), got {status}"
            )

    @classmethod
    def check_protocol(cls, protocol: WireProtocol, values: Mapping[str, object]) -> None:
        own = REPLY_ATTRIBUTES[protocol.name]
        for attr in cls.attributes:
            if attr.name in own or attr.name == "forward" or values[attr.name] == attr.default:
                continue
            fits = ", ".join((*own, "forward"))
            raise FieldError(
                f"attributes.{attr.name}: not an attribute of inject_reply on protocol "
                f"{protocol.name} (its attributes: {fits})"
            )

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.reply: bytes | None = None

    def on_part(self, data: bytes, part: Part) -> None:
        from chaosnet.proxy.gate import GatePipe

        pipe = self.pipe
        assert isinstance(pipe, GatePipe), "inject_reply runs inside a message gate"
        forward = bool(self.attr("forward"))
        if part.last:
            # Registered before the request's last byte goes on: the server cannot answer first.
            reply = self._reply(pipe.session, part.message)
            pipe.session.inject(part.message, reply, forward, self.spec.name)
        if forward:
            self.emit(data)
        else:
            self.drop(data)

    def _reply(self, session: MessageSession, request: int) -> bytes:
        protocol = session.protocol
        name = protocol.name
        if name == "http1":
            exchange = session.shared
            assert isinstance(exchange, Exchange)
            head_only = bool(exchange.code(request) & HEAD_METHOD)
            return http_reply(self.spec.attributes, head_only)
        if name == "resp":
            error = str(self.attr("error")) or DEFAULT_ERROR
            return b"-" + error.encode() + b"\r\n"
        payload = str(self.attr("payload")).encode()
        if name == "line":
            return payload + str(protocol.options["delimiter"]).encode("latin-1")
        fmt = frame_format(
            max(len(payload), 1),
            header_size=protocol.options["header_size"],
            byte_order=protocol.options["byte_order"],
        )
        return fmt.encode(payload)


def http_reply(attributes: Mapping[str, object], head_only: bool) -> bytes:
    """The HTTP/1.1 response ``inject_reply`` sends."""
    status = attributes["status"] or DEFAULT_STATUS
    assert isinstance(status, int)
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Injected"
    body = str(attributes["body"]).encode()
    headers = attributes["headers"]
    assert isinstance(headers, dict)
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{key}: {value}" for key, value in headers.items()]
    if not any(key.lower() == "content-length" for key in headers):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body
