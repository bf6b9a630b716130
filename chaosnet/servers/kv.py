"""The kv server's state: a key-value store plus the log of every write it received.

Sans-IO (bytes in, bytes out) so it can be tested without a socket; the server
process wraps it in a ``FramedProtocol``. The protocol is ``chaosnet.kv``.
"""

from __future__ import annotations

from chaosnet.kv import (
    WRITES_PAGE_LIMIT,
    Ack,
    Clear,
    Failure,
    Get,
    KVProtocolError,
    Put,
    Request,
    Response,
    Value,
    WriteLog,
    WriteRecord,
    Writes,
    decode_request,
    encode_response,
)

PAGE_BYTES = 1024 * 1024  # keep a page of the write log well under any frame limit


class KVStore:
    """Applies puts and logs each one as received; with ``dedupe`` a repeated request id is
    acknowledged (``applied: false``) and logged but not applied again.
    """

    def __init__(self, *, dedupe: bool = False) -> None:
        self.dedupe = dedupe
        self._data: dict[str, str] = {}
        self._log: list[WriteRecord] = []
        self._applied_ids: set[str] = set()
        self._first_seq = 1  # sequence numbers keep growing across a clear

    def handle_payload(self, payload: bytes) -> bytes:
        try:
            request = decode_request(payload)
        except KVProtocolError as exc:
            return encode_response(Failure(str(exc)))
        return encode_response(self.handle(request))

    def handle(self, request: Request) -> Response:
        if isinstance(request, Put):
            return self._put(request)
        if isinstance(request, Get):
            return Value(self._data.get(request.key))
        if isinstance(request, Writes):
            return self._page(request)
        if isinstance(request, Clear):
            self._first_seq += len(self._log)
            self._data.clear()
            self._log.clear()
            self._applied_ids.clear()
            return Ack()
        raise AssertionError(f"unhandled request {request!r}")

    def _put(self, put: Put) -> Ack:
        applied = not (self.dedupe and put.request_id in self._applied_ids)
        seq = self._first_seq + len(self._log)
        self._log.append(WriteRecord(seq, put.key, put.value, put.request_id, applied))
        if applied:
            self._data[put.key] = put.value
            self._applied_ids.add(put.request_id)
        return Ack(applied)

    def _page(self, query: Writes) -> Response:
        if query.since < 0 or query.limit < 1:
            return Failure(f"writes: since must be >= 0 and limit >= 1, got {query}")
        start = max(0, query.since + 1 - self._first_seq)
        stop = min(len(self._log), start + min(query.limit, WRITES_PAGE_LIMIT))
        page: list[WriteRecord] = []
        size = 0
        for record in self._log[start:stop]:
            size += len(record.key) + len(record.value) + len(record.request_id) + 64
            if page and size > PAGE_BYTES:
                break
            page.append(record)
        return WriteLog(tuple(page), more=start + len(page) < len(self._log))
