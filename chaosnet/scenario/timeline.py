"""The fault timeline: fire each step at its time or after its count of requests, and log it.

Time-based steps run on one thread of their own, in order of ``at``;
count-based steps run on the workload's thread, between two requests, so
"after 5 requests" is exact. Steps never overlap (one lock, which the runner
also holds while it takes the stage down, so no step is left half-done), and
none fires once the run is stopped. The first step that fails stops the run:
a scenario whose faults were not injected proves nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chaosnet.scenario.model import RECOVERY_ACTIONS, Step
from chaosnet.scenario.units import format_duration

JOIN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TimelineEvent:
    """A step that fired (or failed to), when, and what it did."""

    time: float  # seconds since the workload started
    step: int  # index in the scenario's timeline
    trigger: str  # "at 200ms" or "after 5 requests"
    action: str  # the step's action key, e.g. "add_toxic"
    description: str
    ok: bool = True
    error: str | None = None
    duration: float = 0.0  # how long the step took (a server start takes a while)

    @property
    def done(self) -> float:
        """When the step had taken effect: a lifted fault counts from here."""
        return self.time + self.duration

    @property
    def recovery(self) -> bool:
        """Did this step end a fault (remove a toxic, enable a proxy, bring a server back)?"""
        return self.ok and self.action in RECOVERY_ACTIONS

    def to_json(self) -> dict[str, Any]:
        return {
            "time": round(self.time, 6),
            "duration": round(self.duration, 6),
            "step": self.step,
            "trigger": self.trigger,
            "action": self.action,
            "description": self.description,
            "ok": self.ok,
            "error": self.error,
        }


def trigger_text(step: Step) -> str:
    if step.at is not None:
        return f"at {format_duration(step.at)}"
    count = step.after_requests
    return f"after {count} request{'s' if count != 1 else ''}"


def describe(step: Step) -> str:
    """``add latency latency_downstream to main (latency=300)``, ``kill server db`` ..."""
    action = step.action
    if step.add_toxic is not None:
        toxic = step.add_toxic
        shown = {**toxic.attributes(explicit=True), **toxic.extension_fields()}
        attrs = ", ".join(f"{k}={v}" for k, v in shown.items())
        where = getattr(toxic, "proxy", "?")
        return f"add {toxic.type} {toxic.toxic_name} to {where}" + (f" ({attrs})" if attrs else "")
    if step.update_toxic is not None:
        update = step.update_toxic
        changes = {**(update.model_extra or {})}
        if update.toxicity is not None:
            changes["toxicity"] = update.toxicity
        attrs = ", ".join(f"{k}={v}" for k, v in changes.items())
        return f"update {update.proxy}/{update.name} ({attrs})"
    if step.remove_toxic is not None:
        return f"remove {step.remove_toxic.proxy}/{step.remove_toxic.name}"
    kind = "proxy" if action in ("disable", "enable") else "server"
    return f"{action} {kind} {step.target}"


class Timeline:
    """Runs the steps of one scenario against ``fire`` and records what happened."""

    def __init__(
        self,
        steps: Sequence[Step],
        fire: Callable[[Step], None],
        clock: Callable[[], float],
        stop: threading.Event,
        on_event: Callable[[TimelineEvent], None],
        *,
        lock: threading.Lock | None = None,
    ) -> None:
        self._steps = list(enumerate(steps))
        self._fire = fire
        self._clock = clock
        self._stop = stop
        self._on_event = on_event
        self._lock = lock or threading.Lock()
        self._fired: set[int] = set()
        self._thread: threading.Thread | None = None
        self.events: list[TimelineEvent] = []
        self.error: str | None = None
        self.on_thread_exit: Callable[[], None] = lambda: None

    def start(self) -> threading.Thread | None:
        """Start the thread for time-based steps (None when there are none)."""
        timed = sorted(
            ((i, s) for i, s in self._steps if s.at is not None), key=lambda item: item[1].at or 0
        )
        if not timed:
            return None
        self._thread = threading.Thread(
            target=self._run_timed, args=(timed,), name="chaosnet-timeline", daemon=True
        )
        self._thread.start()
        return self._thread

    def before_request(self, finished: int) -> None:
        """Fire the steps due once ``finished`` requests have finished."""
        for index, step in self._steps:
            if step.after_requests == finished:
                self._run(index, step)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)

    def unfired(self) -> list[tuple[int, Step]]:
        return [(i, s) for i, s in self._steps if i not in self._fired]

    def _run_timed(self, timed: list[tuple[int, Step]]) -> None:
        try:
            for index, step in timed:
                assert step.at is not None
                if self._stop.wait(max(0.0, step.at - self._clock())):
                    return
                self._run(index, step)
        finally:
            self.on_thread_exit()

    def _run(self, index: int, step: Step) -> None:
        with self._lock:
            if self._stop.is_set():  # the run is over (or being torn down): too late
                return
            when = self._clock()
            failure: Exception | None = None
            try:
                self._fire(step)
            except Exception as exc:  # a failed step is reported, and ends the run
                failure = exc
            event = TimelineEvent(
                when,
                index,
                trigger_text(step),
                step.action,
                describe(step),
                ok=failure is None,
                error=None if failure is None else f"{type(failure).__name__}: {failure}",
                duration=self._clock() - when,
            )
            if failure is not None:
                self.error = self.error or f"step {index} ({event.description}) failed: {failure}"
                self._stop.set()
            self._fired.add(index)
            self.events.append(event)
        self._on_event(event)
