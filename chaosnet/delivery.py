"""Delivery check: compare what a client believes it wrote with what the kv server applied.

The client knows, per request id, whether its write was acknowledged. The
server's write log (``KVClient.writes()``) has every write it received, in
order, duplicates included. The promise to check:

- an acknowledged write was applied **exactly once** (missing: lost; more: duplicated);
- an unacknowledged write (error, timeout, gave up) was applied **at most once**: it may
  or may not have arrived, but it must not have been applied twice.

Counting *applied* writes makes a dedupe-mode server pass: a resent request is
received twice, applied once, and the report lists it under ``redelivered``
(information, not a failure). Request ids the client did not name are ignored,
so tests can share one server.

    ledger = DeliveryLedger()
    for i in range(100):
        with ledger.write() as request_id:       # acknowledged unless the block raises
            client.put(f"k{i}", "v", request_id)
    assert_delivery(ledger, client.writes())    # DeliveryError, an AssertionError
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from chaosnet.kv import WriteRecord, new_request_id

_SHOWN = 10


class DeliveryLedger:
    """What the client believes: which request ids were acknowledged and which were not.

    A request id recorded several times (resent with the same idempotency key)
    counts as acknowledged if any of its attempts was.
    """

    def __init__(self) -> None:
        self._acked: dict[str, bool] = {}  # insertion-ordered set of outcomes

    @property
    def acknowledged(self) -> list[str]:
        return [rid for rid, acked in self._acked.items() if acked]

    @property
    def unacknowledged(self) -> list[str]:
        return [rid for rid, acked in self._acked.items() if not acked]

    def record(self, request_id: str, *, acknowledged: bool) -> None:
        self._acked[request_id] = self._acked.get(request_id, False) or acknowledged

    @contextmanager
    def write(
        self,
        request_id: str | None = None,
        *,
        swallow: type[BaseException] | tuple[type[BaseException], ...] = (),
    ) -> Iterator[str]:
        """Yield a request id; acknowledged if the block ends normally, unacknowledged if it
        raises. The error propagates unless it is an instance of ``swallow``.
        """
        rid = request_id or new_request_id()
        try:
            yield rid
        except BaseException as exc:
            self.record(rid, acknowledged=False)
            if isinstance(exc, swallow):
                return
            raise
        self.record(rid, acknowledged=True)

    def check(self, writes: Iterable[WriteRecord]) -> DeliveryReport:
        return check_delivery(self.acknowledged, self.unacknowledged, writes)


@dataclass(frozen=True)
class DeliveryReport:
    """The verdict; ``lost`` and ``duplicated`` are failures, ``redelivered`` is not."""

    acknowledged: int
    unacknowledged: int
    lost: tuple[str, ...] = ()
    duplicated: dict[str, int] = field(default_factory=dict)  # request id -> times applied
    redelivered: dict[str, int] = field(default_factory=dict)  # received > 1, applied once
    unacknowledged_applied: int = 0

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated

    def render(self) -> str:
        head = (
            f"delivery check: {self.acknowledged} acknowledged, {self.unacknowledged} "
            f"unacknowledged ({self.unacknowledged_applied} of them applied)"
        )
        lines = [head]
        if self.lost:
            lines.append(f"LOST {len(self.lost)} acknowledged write(s), never applied:")
            lines += [f"  {rid}" for rid in self.lost[:_SHOWN]]
            lines += _more(len(self.lost))
        if self.duplicated:
            lines.append(f"DUPLICATED {len(self.duplicated)} write(s), applied more than once:")
            shown = list(self.duplicated.items())[:_SHOWN]
            lines += [f"  {rid}: applied {count} times" for rid, count in shown]
            lines += _more(len(self.duplicated))
        if self.redelivered:
            lines.append(f"(redelivered and deduplicated, fine: {len(self.redelivered)} write(s))")
        if self.ok:
            lines.append("every acknowledged write applied exactly once, none applied twice")
        return "\n".join(lines)


def _more(count: int) -> list[str]:
    return [f"  ... and {count - _SHOWN} more"] if count > _SHOWN else []


class DeliveryError(AssertionError):
    """A delivery check failed; ``report`` has the lost and duplicated request ids."""

    def __init__(self, report: DeliveryReport) -> None:
        self.report = report
        super().__init__(report.render())


def check_delivery(
    acknowledged: Iterable[str], unacknowledged: Iterable[str], writes: Iterable[WriteRecord]
) -> DeliveryReport:
    """Compare the client's beliefs with the server's write log; see the module docstring.

    An id in both lists counts as acknowledged (a later attempt succeeded).
    """
    acked = list(dict.fromkeys(acknowledged))
    acked_set = set(acked)
    unacked = [rid for rid in dict.fromkeys(unacknowledged) if rid not in acked_set]
    known = acked_set.union(unacked)
    received: Counter[str] = Counter()
    applied: Counter[str] = Counter()
    for record in writes:
        if record.request_id in known:
            received[record.request_id] += 1
            applied[record.request_id] += record.applied
    return DeliveryReport(
        acknowledged=len(acked),
        unacknowledged=len(unacked),
        lost=tuple(rid for rid in acked if applied[rid] == 0),
        duplicated={rid: applied[rid] for rid in [*acked, *unacked] if applied[rid] > 1},
        redelivered={rid: n for rid, n in received.items() if n > 1 and applied[rid] == 1},
        unacknowledged_applied=sum(1 for rid in unacked if applied[rid] > 0),
    )


def assert_delivery(
    ledger: DeliveryLedger | tuple[Iterable[str], Iterable[str]],
    writes: Iterable[WriteRecord],
) -> DeliveryReport:
    """``check_delivery``, raising ``DeliveryError`` on a loss or a duplicate."""
    if isinstance(ledger, DeliveryLedger):
        report = ledger.check(writes)
    else:
        report = check_delivery(ledger[0], ledger[1], writes)
    if not report.ok:
        raise DeliveryError(report)
    return report
