"""Apply a fault schedule to a test's own proxies and servers while its workload runs.

This is :func:`run_schedule`, the pytest side of exploration, for a test that
draws schedules with ``@given(schedules(envelope))``::

    with run_schedule(schedule, chaos, servers={"db": server}):
        ...  # the test's own workload

Proxies are named as the test named them (``chaos.proxy(upstream, name="primary")``).
The schedule's steps run on the scenario timeline's thread, at their times since
the ``with`` began, through the same step code as a scenario file's. Entering
resets the named proxies (their toxics removed, each enabled), so one example
never sees the last one's faults; leaving stops the timeline and lifts what is
still on: the toxics it added, the proxies it disabled, the servers it killed or
paused.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from chaosnet.errors import ChaosnetError
from chaosnet.explore.schedule import Schedule
from chaosnet.scenario.model import Step
from chaosnet.scenario.stage import add_toxic, apply_step
from chaosnet.scenario.timeline import Timeline, TimelineEvent
from chaosnet.scenario.toxics import ToxicBase

if TYPE_CHECKING:
    from chaosnet.chaos import Chaos, ProxyHandle
    from chaosnet.servers.lifecycle import RealServer


def run_schedule(
    schedule: Schedule,
    proxies: Chaos | Mapping[str, ProxyHandle],
    *,
    servers: Mapping[str, RealServer] | None = None,
) -> ScheduleRun:
    """Apply ``schedule`` to the proxies (a ``chaos`` controller's, by name) while a ``with``
    block runs; ``servers`` are the real servers its kill, pause and restart faults name."""
    if isinstance(proxies, Mapping):
        named = dict(proxies)
    else:
        prefix = proxies.name_prefix
        named = {p.name.removeprefix(prefix): p for p in proxies.proxies}
    return ScheduleRun(schedule, named, servers)


class ScheduleRun:
    """One schedule on named proxies and servers; a context manager (see the module)."""

    def __init__(
        self,
        schedule: Schedule,
        proxies: Mapping[str, ProxyHandle],
        servers: Mapping[str, RealServer] | None = None,
    ) -> None:
        self.schedule = schedule
        self.proxies = dict(proxies)
        self.servers = dict(servers or {})
        self._missing_targets()
        self.steps = [Step.model_validate(step) for step in schedule.steps()]
        self._stop = threading.Event()
        self._origin = 0.0
        self._timeline: Timeline | None = None
        self.events: list[TimelineEvent] = []

    def _missing_targets(self) -> None:
        for fault in self.schedule:
            known = self.servers if fault.kind in ("kill", "pause", "restart") else self.proxies
            if fault.target not in known:
                what = "server" if known is self.servers else "proxy"
                raise ChaosnetError(
                    f"the schedule's fault {fault.label()!r} names {what} {fault.target!r}, "
                    f"but run_schedule was given {', '.join(sorted(known)) or 'none'}"
                )

    def now(self) -> float:
        return time.monotonic() - self._origin

    def __enter__(self) -> ScheduleRun:
        self._reset()
        self._note()
        self._origin = time.monotonic()
        self._timeline = Timeline(self.steps, self._fire, self.now, self._stop, self.events.append)
        self._timeline.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._timeline is not None
        self._timeline.stop()
        self._lift()
        if self._timeline.error is not None and exc is None:
            raise ChaosnetError(f"the schedule could not be applied: {self._timeline.error}")

    def _fire(self, step: Step) -> None:
        apply_step(step, self.proxies, self.servers, _add)

    def _reset(self) -> None:
        for proxy in self.proxies.values():
            for toxic in proxy.toxics():
                proxy.client.remove_toxic(proxy.name, toxic.name)
            if not proxy.info().enabled:
                proxy.enable()

    def _lift(self) -> None:
        """Whatever the schedule still has on, off: a failed test leaves no fault behind."""
        for name, server in self.servers.items():
            if any(f.target == name for f in self.schedule):
                if server.paused:
                    server.resume()
                if not server.running:
                    server.start()
        self._reset()

    def _note(self) -> None:
        """Inside a Hypothesis test, the report shows the schedule as scenario YAML."""
        try:
            from hypothesis import note
            from hypothesis.errors import InvalidArgument
        except ImportError:
            return
        with contextlib.suppress(InvalidArgument):  # outside a Hypothesis test: no note
            note(f"fault schedule, as a scenario timeline:\n{self.schedule.to_yaml()}")


def _add(proxy: ProxyHandle, toxic: ToxicBase, _name: str) -> None:
    add_toxic(proxy, toxic)
