"""Delivery promises checked against a real kv server, through a fault-injecting proxy."""

from __future__ import annotations

import pytest

from chaosnet.chaos import Chaos
from chaosnet.connection import RequestMayHaveBeenDelivered
from chaosnet.delivery import DeliveryError, DeliveryLedger, assert_delivery
from chaosnet.kv import KVClient
from chaosnet.retry import RetryDetails, RetryPolicy
from chaosnet.servers import ServerProcess


def test_non_idempotent_writes_are_never_applied_twice(
    chaos: Chaos, kv_server: ServerProcess
) -> None:
    proxy = chaos.proxy(kv_server)
    ledger = DeliveryLedger()
    policy = RetryPolicy(attempts=3, deadline=5.0, initial=0.01)
    with KVClient(proxy.address, retry=policy) as kv:
        for i in range(10):
            # Replies of writes 3 and 7 are lost after the server applied them.
            toxic = proxy.toxic("limit_data", bytes=0) if i in (3, 7) else None
            with ledger.write(swallow=(RequestMayHaveBeenDelivered,)) as request_id:
                kv.put(f"key{i}", "value", request_id=request_id, idempotent=False)
            if toxic is not None:
                toxic.remove()
        assert len(ledger.unacknowledged) == 2
        assert_delivery(ledger, kv.writes())  # acked: exactly once; unacked: at most once


def test_blind_resends_are_caught_as_duplicates(chaos: Chaos, kv_server: ServerProcess) -> None:
    proxy = chaos.proxy(kv_server)
    ledger = DeliveryLedger()
    lost_reply = proxy.toxic("limit_data", bytes=0)

    def lift(details: RetryDetails) -> None:
        lost_reply.remove()

    policy = RetryPolicy(attempts=3, deadline=5.0, initial=0.01, on_retry=lift)
    with KVClient(proxy.address, retry=policy) as kv:
        with ledger.write() as request_id:  # idempotent=True: resent after the lost reply
            kv.put("counter", "1", request_id=request_id, idempotent=True)
        with pytest.raises(DeliveryError, match="DUPLICATED 1 write"):
            assert_delivery(ledger, kv.writes())
