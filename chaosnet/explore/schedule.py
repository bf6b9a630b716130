"""A fault schedule: faults with a start and a duration, and the timeline steps they become.

A :class:`Fault` is one fault of an envelope's kinds, on one target, from
``start`` for ``duration`` (both whole milliseconds since the workload started,
so a schedule prints and shrinks exactly). A :class:`Schedule` turns into an
ordinary scenario ``timeline:``: a toxic is added at its start and removed at
its end, a proxy disabled and enabled, a server killed and started, paused and
resumed; a restart is one step. This module needs no Hypothesis.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaosnet.scenario.envelope import WHOLE_FAULTS

PathOf = dict[str, frozenset[str]]  # a target -> the client endpoints (proxies) it takes down


@dataclass(frozen=True)
class Fault:
    """One generated fault; ``attributes`` and ``fields`` in Toxiproxy's units."""

    kind: str  # "toxic", "disable", "kill", "pause" or "restart"
    target: str  # a proxy (toxic, disable) or a server (kill, pause, restart)
    start: int  # ms since the workload started
    duration: int  # ms; 0 for a restart
    toxic: str | None = None
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, int] = field(default_factory=dict)  # targeting
    outage: bool = True

    @property
    def end(self) -> int:
        return self.start + self.duration

    def label(self) -> str:
        if self.kind != "toxic":
            return f"{self.kind} {self.target}"
        shown = {**self.attributes, **self.fields}
        attrs = ", ".join(f"{k}={v}" for k, v in shown.items())
        return f"{self.toxic} on {self.target}/{self.stream}" + (f" ({attrs})" if attrs else "")

    def describe(self) -> str:
        when = f"at {self.start}ms"
        return f"{self.label()} {when}" + (f" for {self.duration}ms" if self.duration else "")

    def steps(self, number: int) -> list[dict[str, Any]]:
        """This fault as scenario timeline steps (plain data, as a file would say them)."""
        if self.kind == "toxic":
            name = f"explore{number}_{self.toxic}"
            toxic: dict[str, Any] = {"proxy": self.target, "type": self.toxic, "name": name}
            if self.stream != "downstream":
                toxic["stream"] = self.stream
            if self.toxicity != 1.0:
                toxic["toxicity"] = self.toxicity
            toxic.update(self.attributes)
            toxic.update(self.fields)
            return [
                {"at": _ms(self.start), "add_toxic": toxic},
                {"at": _ms(self.end), "remove_toxic": {"proxy": self.target, "name": name}},
            ]
        steps = [{"at": _ms(self.start), self.kind: self.target}]
        lift = WHOLE_FAULTS[self.kind]
        if lift is not None:
            steps.append({"at": _ms(self.end), lift: self.target})
        return steps


def _ms(value: int) -> str:
    return f"{value}ms"


@dataclass(frozen=True)
class Schedule:
    """The faults of one generated example, in order of start."""

    faults: tuple[Fault, ...]

    def __iter__(self) -> Iterator[Fault]:
        return iter(self.faults)

    def __len__(self) -> int:
        return len(self.faults)

    def steps(self) -> list[dict[str, Any]]:
        """The scenario ``timeline:`` of this schedule, in time order (stable)."""
        steps = [s for number, f in enumerate(self.faults, 1) for s in f.steps(number)]
        return sorted(steps, key=lambda step: int(str(step["at"]).removesuffix("ms")))

    def kinds(self) -> list[str]:
        """The fault kinds in it, a toxic by its type: ``["disable", "reset_peer"]``."""
        return [f.toxic if f.kind == "toxic" and f.toxic else f.kind for f in self.faults]

    def to_yaml(self) -> str:
        """The schedule as a scenario ``timeline:``, ready to paste into a file."""
        import yaml  # the harness has it; the schedule itself is plain data

        return yaml.safe_dump({"timeline": self.steps()}, sort_keys=False)

    def describe(self) -> str:
        if not self.faults:
            return "no fault"
        return "; ".join(f.describe() for f in self.faults)

    def size(self) -> tuple[int, int, int]:
        """How big it is, for choosing the smallest of several failures: faults, time, ends."""
        return (len(self.faults), sum(f.duration for f in self.faults), max(f.end for f in self))


def fit(
    faults: Sequence[Fault],
    *,
    max_active: int,
    paths: PathOf | None,
    endpoints: frozenset[str],
) -> Schedule:
    """The faults that keep the envelope's rules, taken in order of start; the rest dropped.

    A fault is kept when, with it, no more than ``max_active`` faults are active at
    any moment, it does not overlap another whole-target fault on the same target
    (two disables of one proxy, a kill of a paused server), and, when ``paths`` is
    given, at least one client endpoint stays up throughout. Dropping (rather than
    rejecting the example) keeps generation cheap and lets Hypothesis shrink the
    list it drew.
    """
    kept: list[Fault] = []
    for fault in sorted(faults, key=lambda f: (f.start, f.end)):
        overlapping = [k for k in kept if _overlap(k, fault)]
        if len(overlapping) + 1 > max_active:
            continue
        if any(_exclusive(k, fault) for k in overlapping):
            continue
        if paths is not None and not _path_stays_up([*overlapping, fault], paths, endpoints):
            continue
        kept.append(fault)
    return Schedule(tuple(kept))


def _overlap(a: Fault, b: Fault) -> bool:
    # A restart lasts no time of its own, but the server is down while it restarts:
    # count it as active at its start instant.
    return a.start <= b.end and b.start <= a.end


def _exclusive(a: Fault, b: Fault) -> bool:
    """Two faults that cannot share a target at once (the lifting step of one undoes both)."""
    return a.target == b.target and not (a.kind == b.kind == "toxic")


def _path_stays_up(active: Sequence[Fault], paths: PathOf, endpoints: frozenset[str]) -> bool:
    """Whether some endpoint is untouched by every outage among ``active`` (all overlap one)."""
    down: set[str] = set()
    for fault in active:
        if fault.outage:
            down |= paths.get(fault.target, frozenset())
    # The faults overlap the new one, not necessarily each other: counting them all as
    # down at once is the safe side.
    return bool(endpoints - down)
