"""The delivery check: pure accounting, then against the real kv server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaosnet.delivery import (
    DeliveryError,
    DeliveryLedger,
    assert_delivery,
    check_delivery,
)
from chaosnet.kv import KVClient, WriteRecord
from chaosnet.servers import ServerProcess, start_builtin


def log(*request_ids: str, not_applied: tuple[str, ...] = ()) -> list[WriteRecord]:
    """A write log receiving ``request_ids`` in order; a repeat in ``not_applied`` was deduped."""
    records, seen = [], set()
    for seq, rid in enumerate(request_ids, 1):
        applied = not (rid in not_applied and rid in seen)
        seen.add(rid)
        records.append(WriteRecord(seq, "k", "v", rid, applied))
    return records


def test_every_write_exactly_once_passes() -> None:
    report = check_delivery(["a", "b"], ["c"], log("a", "b"))
    assert report.ok
    assert (report.acknowledged, report.unacknowledged, report.unacknowledged_applied) == (2, 1, 0)
    assert "applied exactly once" in report.render()


def test_a_lost_acknowledged_write_fails() -> None:
    report = check_delivery(["a", "b", "c"], [], log("a", "c"))
    assert report.lost == ("b",)
    assert not report.ok
    assert "LOST 1 acknowledged write(s), never applied:\n  b" in report.render()


def test_duplicates_fail_for_acknowledged_and_unacknowledged_writes() -> None:
    report = check_delivery(["a"], ["u"], log("a", "u", "a", "u", "u"))
    assert report.duplicated == {"a": 2, "u": 3}
    assert "DUPLICATED 2 write(s)" in report.render()
    assert "  u: applied 3 times" in report.render()


def test_an_unacknowledged_write_may_be_applied_once() -> None:
    report = check_delivery([], ["u"], log("u"))
    assert report.ok
    assert report.unacknowledged_applied == 1


def test_a_deduplicated_redelivery_is_information_not_a_failure() -> None:
    report = check_delivery(["a"], [], log("a", "a", not_applied=("a",)))
    assert report.ok
    assert report.redelivered == {"a": 2}
    assert "redelivered and deduplicated" in report.render()


def test_ids_the_client_did_not_write_are_ignored() -> None:
    assert check_delivery(["a"], [], log("other", "a", "other")).ok


def test_a_later_successful_attempt_makes_an_id_acknowledged() -> None:
    ledger = DeliveryLedger()
    ledger.record("a", acknowledged=False)
    ledger.record("a", acknowledged=True)
    ledger.record("b", acknowledged=True)
    ledger.record("b", acknowledged=False)
    assert (ledger.acknowledged, ledger.unacknowledged) == (["a", "b"], [])


def test_assert_delivery_raises_an_assertion_error_with_the_report() -> None:
    with pytest.raises(DeliveryError) as failure:
        assert_delivery((["a", "b"], []), log("a", "a"))
    assert isinstance(failure.value, AssertionError)
    assert failure.value.report.lost == ("b",)
    assert str(failure.value).startswith("delivery check: 2 acknowledged, 0 unacknowledged")


def test_the_ledger_context_records_outcomes() -> None:
    ledger = DeliveryLedger()
    with ledger.write("ok"):
        pass
    with ledger.write("swallowed", swallow=ConnectionError):
        raise ConnectionResetError
    with pytest.raises(ValueError, match="boom"), ledger.write("raised"):
        raise ValueError("boom")
    with ledger.write() as generated:
        assert len(generated) == 32
    assert ledger.acknowledged == ["ok", generated]
    assert ledger.unacknowledged == ["swallowed", "raised"]


# ---------------------------------------------------------------- against the kv server


@pytest.fixture(scope="module")
def kv() -> Iterator[ServerProcess]:
    with start_builtin("kv") as server:
        yield server


@pytest.fixture(scope="module")
def kv_dedupe() -> Iterator[ServerProcess]:
    with start_builtin("kv", dedupe=True) as server:
        yield server


def resend_every_put(server: ServerProcess, ledger: DeliveryLedger) -> list[WriteRecord]:
    """A naive client: it sends each put twice with the same request id (a blind retry)."""
    with KVClient(server.address) as client:
        client.clear()
        for i in range(5):
            with ledger.write(f"w{i}") as rid:
                client.put(f"k{i}", "v", rid)
                client.put(f"k{i}", "v", rid)
        return client.writes()


def test_a_blind_resend_is_caught_as_duplicates(kv: ServerProcess) -> None:
    ledger = DeliveryLedger()
    writes = resend_every_put(kv, ledger)
    with pytest.raises(DeliveryError, match="DUPLICATED 5 write"):
        assert_delivery(ledger, writes)


def test_the_same_resend_is_exactly_once_with_dedupe(kv_dedupe: ServerProcess) -> None:
    ledger = DeliveryLedger()
    report = assert_delivery(ledger, resend_every_put(kv_dedupe, ledger))
    assert len(report.redelivered) == 5


def test_a_write_sent_elsewhere_is_caught_as_lost(kv: ServerProcess) -> None:
    ledger = DeliveryLedger()
    with KVClient(kv.address) as client:
        client.clear()
        with ledger.write("really-sent") as rid:
            client.put("k", "v", rid)
        ledger.record("never-sent", acknowledged=True)  # a client that acks without the server
        report = check_delivery(ledger.acknowledged, ledger.unacknowledged, client.writes())
    assert report.lost == ("never-sent",)
