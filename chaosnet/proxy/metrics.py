"""``GET /metrics``: Toxiproxy's Prometheus metrics, and chaosnet's own under ``chaosnet_``.

Enabled as in toxiproxy-server, by ``-proxy-metrics`` and/or ``-runtime-metrics``;
with neither, there is no ``/metrics`` (404). Exposition is prometheus_client's.

``-proxy-metrics`` (names and labels as Toxiproxy 2.12):

- ``toxiproxy_proxy_received_bytes_total{direction, proxy, listener, upstream}``:
  bytes read from the direction's source (the client for ``upstream``);
- ``toxiproxy_proxy_sent_bytes_total{...}``: bytes written to its destination.
  Toxiproxy adds a connection's bytes when its direction ends; chaosnet's
  values are live (open connections included), so they never lag.
- ``chaosnet_connections_opened_total{proxy}``,
  ``chaosnet_connections_closed_total{proxy, by, kind}`` and
  ``chaosnet_toxic_activations_total{proxy, type}`` (see ``counters.py``).

``-runtime-metrics``: prometheus_client's process collector, whose
``process_*`` names are those of Toxiproxy's (CPU, memory, descriptors, start
time), and the Python runtime's ``python_info`` and ``python_gc_*`` in place of
Go's ``go_*``, which a Python process cannot have.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from chaosnet.proxy.engine import Engine

TRAFFIC_LABELS = ("direction", "proxy", "listener", "upstream")
CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True)
class MetricsOptions:
    """toxiproxy-server's two flags."""

    proxy: bool = False
    runtime: bool = False

    @property
    def enabled(self) -> bool:
        return self.proxy or self.runtime


class EngineCollector(Collector):
    """The engine's counters, read at scrape time (on the loop's thread, like the API)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        counters = self.engine.runtime.counters
        received, sent = counters.traffic(self.engine.proxies.values())
        for name, doc, values in (
            ("toxiproxy_proxy_received_bytes", "Bytes read from a direction's source", received),
            ("toxiproxy_proxy_sent_bytes", "Bytes written to a direction's destination", sent),
        ):
            family = CounterMetricFamily(name, doc, labels=TRAFFIC_LABELS)
            for labels, value in sorted(values.items()):
                family.add_metric(labels, value)
            yield family
        yield _family(
            "chaosnet_connections_opened",
            "Connections accepted",
            ("proxy",),
            counters.opened.items(),
        )
        yield _family(
            "chaosnet_connections_closed",
            "Connections closed, by who closed first and how (fin or rst)",
            ("proxy", "by", "kind"),
            counters.closed.items(),
        )
        yield _family(
            "chaosnet_toxic_activations",
            "Toxics applied to a connection (toxicity and targeting passed)",
            ("proxy", "type"),
            counters.activations.items(),
        )


def _family(
    name: str, doc: str, labels: tuple[str, ...], items: Iterable[tuple[tuple[str, ...], int]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(items):
        family.add_metric(key, value)
    return family


class Metrics:
    """The registry one server exposes."""

    def __init__(self, engine: Engine, options: MetricsOptions) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        if options.proxy:
            self.registry.register(EngineCollector(engine))
        if options.runtime:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
