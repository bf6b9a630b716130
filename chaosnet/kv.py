"""The kv protocol: framed JSON requests to the builtin key-value server, and its client.

Every message is one chaosnet frame holding one JSON object. Requests carry an
``op``, responses a ``kind``:

- ``{"op": "put", "key": "k", "value": "v", "request_id": "r1"}``
  -> ``{"kind": "ack", "applied": true}``
- ``{"op": "get", "key": "k"}`` -> ``{"kind": "value", "value": "v"}`` (``null`` if absent)
- ``{"op": "writes", "since": 0, "limit": 1000}``
  -> ``{"kind": "writes", "writes": [{"seq": 1, "key": ..., "value": ..., "request_id": ...,
  "applied": true}, ...], "more": false}``
- ``{"op": "clear"}`` -> ``{"kind": "ack", "applied": true}``
- anything malformed -> ``{"kind": "error", "message": "..."}``

The server appends every put it *receives* to its write log, in order, with
its request id, duplicates included, so a delivery check can count
deliveries. In dedupe mode a repeated request id is acknowledged with
``applied: false`` and not applied again, and still logged. Encoding and
decoding live here only; the server (``chaosnet.servers.kv``) and
``KVClient`` both use them. The clients' operations (put, get, the paged write log,
clear) are written once, sans-IO, and ``KVClient`` and ``AsyncKVClient`` run them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

from chaosnet.closing import AsyncClosing, Closing
from chaosnet.connection import DEFAULT_TIMEOUT, AsyncFramedClient, FramedClient
from chaosnet.framing import DEFAULT_MAX_FRAME_SIZE
from chaosnet.retry import Endpoint, RetryPolicy

WRITES_PAGE_LIMIT = 1000
_T = TypeVar("_T")
_MAX_PAGES = 1_000_000  # a bound on the paging loop


class KVProtocolError(ValueError):
    """A kv message is malformed, or the server rejected a request (permanent)."""


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Put:
    key: str
    value: str
    request_id: str


@dataclass(frozen=True)
class Get:
    key: str


@dataclass(frozen=True)
class Writes:
    """A page of the write log: records with ``seq > since``, at most ``limit`` of them."""

    since: int = 0
    limit: int = WRITES_PAGE_LIMIT


@dataclass(frozen=True)
class Clear:
    """Empty the store and the write log (between tests sharing one server)."""


Request = Put | Get | Writes | Clear
_OPS: dict[str, Callable[..., Request]] = {"put": Put, "get": Get, "writes": Writes, "clear": Clear}
_OP_NAMES = {cls: op for op, cls in _OPS.items()}

# --------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class WriteRecord:
    """One put as the server received it; ``applied`` is false for a deduplicated repeat."""

    seq: int
    key: str
    value: str
    request_id: str
    applied: bool


@dataclass(frozen=True)
class Ack:
    applied: bool = True


@dataclass(frozen=True)
class Value:
    value: str | None


@dataclass(frozen=True)
class WriteLog:
    """A page of the write log; ``more`` when later records did not fit in it."""

    writes: tuple[WriteRecord, ...]
    more: bool = False


@dataclass(frozen=True)
class Failure:
    message: str


Response = Ack | Value | WriteLog | Failure
_KINDS: dict[str, Callable[..., Response]] = {
    "ack": Ack,
    "value": Value,
    "writes": WriteLog,
    "error": Failure,
}
_KIND_NAMES = {cls: kind for kind, cls in _KINDS.items()}

# --------------------------------------------------------------------------- codec


def encode_request(request: Request) -> bytes:
    return _dump({"op": _OP_NAMES[type(request)], **asdict(request)})


def decode_request(payload: bytes) -> Request:
    op, cls, fields = _tagged(payload, "op", _OPS)
    if cls is None:
        raise KVProtocolError(f"unknown op {op!r}: expected one of {', '.join(_OPS)}")
    return _build(cls, fields, f"{op} request")


def encode_response(response: Response) -> bytes:
    return _dump({"kind": _KIND_NAMES[type(response)], **asdict(response)})


def decode_response(payload: bytes) -> Response:
    kind, cls, fields = _tagged(payload, "kind", _KINDS)
    if cls is None:
        raise KVProtocolError(f"unknown response kind {kind!r}")
    if cls is WriteLog:
        records = fields.get("writes")
        if not isinstance(records, list):
            raise KVProtocolError("writes response without a list of writes")
        fields["writes"] = tuple(_build(WriteRecord, _object(r), "write record") for r in records)
    return _build(cls, fields, f"{kind} response")


def _tagged(
    payload: bytes, tag: str, table: Mapping[str, _T]
) -> tuple[object, _T | None, dict[str, Any]]:
    """A message's ``tag`` field (``op``, ``kind``), what ``table`` maps it to (None: an
    unknown or missing tag), and the message's other fields."""
    fields = _load(payload)
    name = fields.pop(tag, None)
    return name, table.get(name) if isinstance(name, str) else None, fields


def _dump(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, separators=(",", ":")).encode()


def _load(payload: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KVProtocolError(f"not a JSON message: {exc}") from None
    return _object(decoded)


def _object(decoded: object) -> dict[str, Any]:
    if not isinstance(decoded, dict):
        raise KVProtocolError(f"expected a JSON object, got {type(decoded).__name__}")
    return decoded


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "value": (str,),
    "request_id": (str,),
    "since": (int,),
    "limit": (int,),
    "seq": (int,),
    "applied": (bool,),
    "message": (str,),
    "more": (bool,),
    "writes": (tuple,),
}


def _build(cls: Callable[..., _T], fields: dict[str, Any], what: str) -> _T:
    names = set(getattr(cls, "__dataclass_fields__", {}))
    unknown = set(fields) - names
    if unknown:
        raise KVProtocolError(f"{what}: unknown field(s) {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        expected = _FIELD_TYPES.get(name, (object,))
        if value is None and name == "value" and cls is Value:
            continue
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            raise KVProtocolError(f"{what}: field {name!r} has the wrong type: {value!r}")
    try:
        return cls(**fields)
    except TypeError:
        missing = sorted(names - set(fields))
        raise KVProtocolError(f"{what}: missing field(s) {', '.join(missing)}") from None


def new_request_id() -> str:
    """A fresh, unique request id."""
    return uuid.uuid4().hex


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class PutResult:
    request_id: str
    applied: bool


#: One request to send, and whether it may be resent after it may have reached the server.
_Call = tuple[Request, bool]
#: A client operation as a sans-IO generator: it yields the calls it needs, is sent each
#: one's response, and returns its result; each client's ``_drive`` runs it over its own
#: framed client, blocking or asyncio.
_Op = Generator[_Call, Response, _T]


def _put(key: str, value: str, request_id: str | None, idempotent: bool) -> _Op[PutResult]:
    put = Put(key, value, request_id or new_request_id())
    return PutResult(put.request_id, _expect((yield put, idempotent), Ack).applied)


def _get(key: str) -> _Op[str | None]:
    return _expect((yield Get(key), True), Value).value


def _writes(page_size: int) -> _Op[list[WriteRecord]]:
    records: list[WriteRecord] = []
    for _ in range(_MAX_PAGES):
        since = records[-1].seq if records else 0
        page = _expect((yield Writes(since=since, limit=page_size), True), WriteLog)
        records.extend(page.writes)
        if not page.more:
            return records
    raise KVProtocolError(f"write log longer than {_MAX_PAGES} pages")


def _clear() -> _Op[None]:
    _expect((yield Clear(), True), Ack)


_Framed = TypeVar("_Framed", FramedClient, AsyncFramedClient)


class _KVClientBase(Generic[_Framed]):
    """What both kv clients share: their framed client and the default for puts."""

    _framed_type: type[_Framed]

    def __init__(
        self,
        endpoints: Endpoint | Sequence[Endpoint],
        *,
        retry: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        idempotent_puts: bool = False,
    ) -> None:
        self.framed: _Framed = self._framed_type(
            endpoints, retry=retry, timeout=timeout, max_frame_size=max_frame_size
        )
        self.idempotent_puts = idempotent_puts

    def _safe(self, idempotent: bool | None) -> bool:
        return self.idempotent_puts if idempotent is None else idempotent


class KVClient(_KVClientBase[FramedClient], Closing):
    """A blocking client of the kv server over a ``FramedClient`` (retry, failover, timeout).

    Reads are retried freely. A put is resent after it may have reached the
    server only when ``idempotent=True`` (per call, or ``idempotent_puts`` for
    all): safe against a dedupe-mode server, a source of duplicates otherwise,
    which is exactly what a delivery check is there to catch.
    """

    _framed_type = FramedClient

    def put(
        self, key: str, value: str, request_id: str | None = None, *, idempotent: bool | None = None
    ) -> PutResult:
        """Store ``value`` under ``key``; ``request_id`` defaults to a fresh one."""
        return self._drive(_put(key, value, request_id, self._safe(idempotent)))

    def get(self, key: str) -> str | None:
        return self._drive(_get(key))

    def writes(self, *, page_size: int = WRITES_PAGE_LIMIT) -> list[WriteRecord]:
        """The server's whole write log, in order, fetched page by page."""
        return self._drive(_writes(page_size))

    def clear(self) -> None:
        """Empty the store and its write log."""
        self._drive(_clear())

    def close(self) -> None:
        self.framed.close()

    def _drive(self, op: _Op[_T]) -> _T:
        try:
            request, idempotent = next(op)
            while True:
                answer = self.framed.request(encode_request(request), idempotent=idempotent)
                request, idempotent = op.send(decode_response(answer))
        except StopIteration as done:
            result: _T = done.value
            return result


class AsyncKVClient(_KVClientBase[AsyncFramedClient], AsyncClosing):
    """``KVClient`` for asyncio code, over an ``AsyncFramedClient``."""

    _framed_type = AsyncFramedClient

    async def put(
        self, key: str, value: str, request_id: str | None = None, *, idempotent: bool | None = None
    ) -> PutResult:
        return await self._drive(_put(key, value, request_id, self._safe(idempotent)))

    async def get(self, key: str) -> str | None:
        return await self._drive(_get(key))

    async def writes(self, *, page_size: int = WRITES_PAGE_LIMIT) -> list[WriteRecord]:
        return await self._drive(_writes(page_size))

    async def clear(self) -> None:
        await self._drive(_clear())

    async def close(self) -> None:
        await self.framed.close()

    async def _drive(self, op: _Op[_T]) -> _T:
        try:
            request, idempotent = next(op)
            while True:
                answer = await self.framed.request(encode_request(request), idempotent=idempotent)
                request, idempotent = op.send(decode_response(answer))
        except StopIteration as done:
            result: _T = done.value
            return result


def _expect(response: Response, kind: type[_T]) -> _T:
    if isinstance(response, Failure):
        raise KVProtocolError(f"kv server rejected the request: {response.message}")
    if not isinstance(response, kind):
        raise KVProtocolError(f"expected a {kind.__name__} response, got {response!r}")
    return response
