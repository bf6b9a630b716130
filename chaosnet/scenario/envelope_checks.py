"""Checks of a scenario's ``explore:`` envelope against the rest of the file.

An envelope is rejected before anything starts when it names what the file
does not have (a proxy, a server, a toxic type or attribute), when it cannot be
kept (a fault that would still be on when the workload ends), or when it is not
fair: a correct client could not survive it, so every failure it finds would be
a false alarm. Fair means that, for a scenario that expects every request
answered,

- every outage is shorter than the client's retry deadline (and the client
  retries at all), and
- with more than one endpoint, one path stays up at any time (``keep_path_up``,
  the default there; a file that turns it off must expect failure).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from chaosnet.proxy.toxics import REGISTRY
from chaosnet.scenario.envelope import (
    SERVER_FAULTS,
    BadFaultValue,
    Envelope,
    FaultKind,
    attribute_values,
)
from chaosnet.scenario.errors import did_you_mean
from chaosnet.scenario.model import Scenario
from chaosnet.scenario.positions import DataPath
from chaosnet.scenario.toxics import TOXICS_BY_TYPE
from chaosnet.scenario.units import format_duration

Fail = Callable[[DataPath, str], None]
Reference = Callable[[DataPath, str, str, Collection[str]], bool]


def check_envelope(spec: Scenario, fail: Fail, reference: Reference) -> None:
    envelope = spec.explore
    if envelope is None:
        return
    for index, kind in enumerate(envelope.faults):
        where: DataPath = ("explore", "faults", index)
        _fault(spec, kind, where, fail, reference)
    _keepable(spec, envelope, fail)
    _fair(spec, envelope, fail)


def _fault(spec: Scenario, kind: FaultKind, where: DataPath, fail: Fail, ref: Reference) -> None:
    if kind.kind == "toxic":
        for i, proxy in enumerate(kind.proxies or []):
            ref((*where, "proxies", i), proxy, "proxy", spec.proxies)
        toxic = kind.toxic or ""
        if toxic not in TOXICS_BY_TYPE:
            fail(
                (*where, "toxic"),
                f"unknown toxic type {toxic!r}{did_you_mean(toxic, TOXICS_BY_TYPE)}",
            )
            return
        for name in kind.proxies or list(spec.proxies):  # a datagram toxic on a TCP proxy...
            fitted = spec.proxies.get(name)
            misfit = (
                None
                if fitted is None
                else REGISTRY[toxic].misfit(fitted.transport, fitted.protocol)
            )
            if misfit is not None:
                fail((*where, "toxic"), f"{misfit} (proxy {name})")
                return
        try:
            attribute_values(kind)
        except BadFaultValue as exc:
            key = (
                (*where, "attributes")
                if exc.key == "attributes"
                else (*where, "attributes", exc.key)
            )
            fail(key, str(exc))
        return
    known = spec.servers if kind.kind in SERVER_FAULTS else spec.proxies
    what = "server" if kind.kind in SERVER_FAULTS else "proxy"
    for i, target in enumerate(kind.targets):
        ref((*where, kind.kind, i), target, what, known)


def _keepable(spec: Scenario, envelope: Envelope, fail: Fail) -> None:
    client = spec.client
    if client.rate is None:
        fail(
            ("client", "rate"),
            "exploration times faults against the workload: give the client a rate, so "
            "the workload's length is known",
        )
        return
    length = (client.requests - 1) / client.rate
    latest = envelope.window + envelope.max_outage
    if latest > length:
        fail(
            ("explore", "window"),
            f"a fault may start as late as {format_duration(envelope.window)} and last "
            f"{format_duration(envelope.max_outage)}, ending at {format_duration(latest)}, but "
            f"the workload's last request starts at about {format_duration(length)} "
            f"({client.requests} requests at {client.rate:g}/s): shorten window or "
            "max_outage, or make more requests",
        )


def _fair(spec: Scenario, envelope: Envelope, fail: Fail) -> None:
    if not spec.expect.all_answered:
        return  # a scenario that expects failure may explore any outage
    retry = spec.client.retry
    if retry is None:
        fail(
            ("explore",),
            "unfair envelope: the scenario expects every request answered, but the client "
            "does not retry (client.retry), so any outage fails it",
        )
        return
    if retry.deadline is not None and envelope.max_outage >= retry.deadline:
        fail(
            ("explore", "max_outage"),
            f"unfair envelope: an outage of up to {format_duration(envelope.max_outage)} is "
            f"not shorter than the client's retry deadline "
            f"({format_duration(retry.deadline)}), so a correct client may fail",
        )
    if envelope.keep_path_up is False and len(spec.client.endpoints) > 1:
        fail(
            ("explore", "keep_path_up"),
            "unfair envelope: keep_path_up is off, so every endpoint may be down at once, "
            "but the scenario expects every request answered",
        )
