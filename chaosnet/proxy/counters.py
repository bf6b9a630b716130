"""What the engine counts for ``GET /metrics``: bytes per proxy and direction, connections, toxics.

Kept whether or not metrics are served (a dict increment per connection event,
nothing per chunk: live byte counts are read from the links at scrape time).
Totals outlive the proxy, as Toxiproxy's counters do: a deleted proxy's series
stays with its last value.

- bytes: per (direction, proxy, listener, upstream), ``received`` (read from the
  direction's source) and ``sent`` (written to its destination); they differ
  when a toxic holds or drops data.
- connections opened per proxy; closed per (proxy, by, kind), ``by`` being
  ``client``, ``upstream``, ``proxy`` or ``toxic`` (the connection log's
  ``closed_by`` without the toxic's name, to keep the series few) and ``kind``
  ``fin`` or ``rst``.
- toxic activations per (proxy, toxic type): a toxic applying to a connection
  (toxicity and targeting passed), counted once per connection.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Protocol

#: (direction, proxy, listener, upstream): Toxiproxy's label values, in its order.
TrafficLabels = tuple[str, str, str, str]


class CountedDirection(Protocol):
    """A direction's byte counts (``Direction``)."""

    @property
    def stream(self) -> str: ...

    @property
    def received(self) -> int: ...

    @property
    def forwarded(self) -> int: ...


class CountedLink(Protocol):
    @property
    def up(self) -> CountedDirection: ...

    @property
    def down(self) -> CountedDirection: ...


class CountedProxy(Protocol):
    """What the counters label traffic with, and the live links to read (``Proxy``)."""

    @property
    def name(self) -> str: ...

    @property
    def listen(self) -> str: ...

    @property
    def upstream(self) -> str: ...

    @property
    def links(self) -> Iterable[CountedLink]: ...


class Counters:
    def __init__(self) -> None:
        self._received: Counter[TrafficLabels] = Counter()
        self._sent: Counter[TrafficLabels] = Counter()
        self.opened: Counter[tuple[str]] = Counter()
        self.closed: Counter[tuple[str, str, str]] = Counter()
        self.activations: Counter[tuple[str, str]] = Counter()

    def connection_opened(self, proxy: str) -> None:
        self.opened[proxy,] += 1

    def connection_closed(self, proxy: str, by: str, kind: str) -> None:
        self.closed[proxy, by.split(" ", 1)[0], kind] += 1

    def toxic_applied(self, proxy: str, type_name: str) -> None:
        self.activations[proxy, type_name] += 1

    def link_finished(self, proxy: CountedProxy, directions: Iterable[CountedDirection]) -> None:
        for direction in directions:
            labels = _labels(proxy, direction.stream)
            self._received[labels] += direction.received
            self._sent[labels] += direction.forwarded

    def traffic(self, proxies: Iterable[CountedProxy]) -> tuple[Counter[TrafficLabels], ...]:
        """(received, sent) per label set: finished links plus the live ones, now."""
        received, sent = Counter(self._received), Counter(self._sent)
        for proxy in proxies:
            for link in proxy.links:
                for direction in (link.up, link.down):
                    labels = _labels(proxy, direction.stream)
                    received[labels] += direction.received
                    sent[labels] += direction.forwarded
        return received, sent


def _labels(proxy: CountedProxy, direction: str) -> TrafficLabels:
    return direction, proxy.name, proxy.listen, proxy.upstream
