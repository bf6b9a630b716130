"""The kv protocol codec and the server's store, without sockets (they are pure functions)."""

from __future__ import annotations

import pytest

from chaosnet.kv import (
    Ack,
    Clear,
    Failure,
    Get,
    KVProtocolError,
    Put,
    Value,
    WriteLog,
    WriteRecord,
    Writes,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from chaosnet.servers.kv import KVStore


@pytest.mark.parametrize("request_", [Put("k", "v", "r1"), Get("k"), Writes(3, 10), Clear()])
def test_requests_round_trip(request_: Put | Get | Writes | Clear) -> None:
    assert decode_request(encode_request(request_)) == request_


@pytest.mark.parametrize(
    "response",
    [
        Ack(False),
        Value(None),
        Value("v"),
        Failure("nope"),
        WriteLog((WriteRecord(1, "k", "v", "r", True),), more=True),
    ],
)
def test_responses_round_trip(response: Ack | Value | WriteLog | Failure) -> None:
    assert decode_response(encode_response(response)) == response


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff", "not a JSON message"),
        (b"[1]", "expected a JSON object, got list"),
        (b'{"op": "delete"}', "unknown op 'delete'"),
        (b'{"op": "put", "key": "k", "value": "v"}', "missing field(s) request_id"),
        (b'{"op": "get", "key": 1}', "field 'key' has the wrong type"),
        (b'{"op": "writes", "since": true}', "field 'since' has the wrong type"),
        (b'{"op": "get", "key": "k", "extra": 1}', "unknown field(s) extra"),
    ],
)
def test_malformed_requests_are_named(payload: bytes, message: str) -> None:
    with pytest.raises(KVProtocolError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_request(payload)


def test_the_store_answers_errors_as_failure_responses() -> None:
    store = KVStore()
    answer = decode_response(store.handle_payload(b'{"op": "nope"}'))
    assert isinstance(answer, Failure)
    assert "unknown op 'nope'" in answer.message
    assert isinstance(store.handle(Writes(since=-1)), Failure)


def test_dedupe_logs_the_repeat_without_applying_it() -> None:
    store = KVStore(dedupe=True)
    assert store.handle(Put("k", "1", "r")) == Ack(True)
    assert store.handle(Put("k", "2", "r")) == Ack(False)
    assert store.handle(Get("k")) == Value("1")
    log = store.handle(Writes())
    assert isinstance(log, WriteLog)
    assert [(w.value, w.applied) for w in log.writes] == [("1", True), ("2", False)]


def test_a_page_is_cut_by_size_and_says_there_is_more() -> None:
    store = KVStore()
    big = "x" * 400_000
    for i in range(5):
        store.handle(Put("k", big, f"r{i}"))
    first = store.handle(Writes())
    assert isinstance(first, WriteLog)
    assert (len(first.writes), first.more) == (2, True)
    rest = store.handle(Writes(since=first.writes[-1].seq))
    assert isinstance(rest, WriteLog)
    assert [w.seq for w in rest.writes] == [3, 4]
