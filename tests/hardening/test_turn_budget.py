"""Issue 14.10: every toxic hands back control within the engine's turn budget, whatever
its attributes. One 64 KiB chunk goes into a stage at the toxic's most expensive
setting (the settings ``benchmarks/toxic_turns.py`` measures the control plane
under); the callback must return having emitted at most ``EMITS_PER_TURN`` pieces
and within ``CALLBACK_BUDGET_S``, and the rest must follow, in order and complete,
from the timers it scheduled."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.toxic_turns import EXPENSIVE
from chaosnet.proxy.toxics import REGISTRY
from chaosnet.proxy.toxics.base import EMITS_PER_TURN, End, ToxicSpec

CHUNK = bytes(random.Random(14).randbytes(64 * 1024))
CALLBACK_BUDGET_S = 0.005  # 1-byte slices of 64 KiB took 60+ ms; 4-byte ints in C take < 1


class FakeTimer:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        self.callback = None


class Pipe:
    """The engine side of a stage, driven by hand: timers run when the test says."""

    stream = "downstream"
    opened_at = 0.0

    def __init__(self) -> None:
        self.timers: list[FakeTimer] = []
        self.rngs: dict[str, random.Random] = {}

    def now(self) -> float:
        return time.monotonic()

    def is_due(self, when: float) -> bool:
        return when <= time.monotonic()

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        timer = FakeTimer(callback)
        self.timers.append(timer)
        return timer

    def dropped(self, count: int) -> None:
        pass

    def rng(self, spec: ToxicSpec) -> random.Random:
        return self.rngs.setdefault(spec.name, random.Random(1))


class Sink:
    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.ends: list[End] = []
        self.data_after_end = False

    def on_data(self, data: bytes) -> None:
        self.pieces.append(data)
        self.data_after_end |= bool(self.ends)

    def on_end(self, end: End) -> None:
        self.ends.append(end)


def stage(kind: str, attributes: dict[str, Any]) -> tuple[Any, Pipe, Sink]:
    cls = REGISTRY[kind]
    values = {attr.name: attr.default for attr in cls.attributes} | attributes
    spec = ToxicSpec(name="t", cls=cls, stream="downstream", toxicity=1.0, attributes=values)
    pipe, sink = Pipe(), Sink()
    return cls(spec, pipe, sink), pipe, sink


def drain(pipe: Pipe, limit: int = 200_000) -> int:
    """Run scheduled timers, as the timer queue would, one per turn; the turns taken."""
    turns = 0
    while pipe.timers and turns < limit:
        timer = pipe.timers.pop(0)
        if timer.callback is not None:
            timer.callback()
        turns += 1
    return turns


@pytest.mark.parametrize("name", sorted(EXPENSIVE))
def test_one_callback_stays_within_the_turn_budget(name: str) -> None:
    kind = "corrupt" if name == "corrupt_bodies" else name
    best = float("inf")
    for _ in range(3):  # the best of three: a loaded machine only makes a call slower
        toxic, _, sink = stage(kind, EXPENSIVE[name])
        started = time.perf_counter()
        toxic.on_data(CHUNK)
        best = min(best, time.perf_counter() - started)
        assert len(sink.pieces) <= EMITS_PER_TURN, name
    assert best < CALLBACK_BUDGET_S, f"{name}: one callback took {best * 1000:.1f} ms"


@pytest.mark.parametrize(
    ("kind", "attributes"),
    [
        ("slicer", {"average_size": 1, "size_variation": 0, "delay": 0}),
        ("slicer", {"average_size": 7, "size_variation": 3, "delay": 0}),
        ("corrupt", {"probability": 0.5}),
        ("corrupt", {"probability": 1.0}),
    ],
)
def test_what_a_turn_left_follows_in_order(kind: str, attributes: dict[str, Any]) -> None:
    toxic, pipe, sink = stage(kind, attributes)
    toxic.on_data(CHUNK)
    toxic.on_data(CHUNK)
    toxic.on_end(End("eof", "upstream"))
    drain(pipe)
    assert not sink.data_after_end  # the end waited behind the data
    out = b"".join(sink.pieces)
    assert len(out) == 2 * len(CHUNK)
    assert sink.ends == [End("eof", "upstream")]
    if kind == "slicer":
        assert out == CHUNK * 2
        assert (
            max(map(len, sink.pieces)) <= attributes["average_size"] + attributes["size_variation"]
        )
    else:
        flipped = sum(bin(a ^ b).count("1") for a, b in zip(out, CHUNK * 2, strict=True))
        expected = attributes["probability"] * len(out)
        assert 0.95 * expected <= flipped <= 1.05 * expected


def test_removing_a_busy_slicer_passes_everything_on_at_once() -> None:
    toxic, _, sink = stage("slicer", {"average_size": 1, "size_variation": 0, "delay": 0})
    toxic.on_data(CHUNK)
    toxic.on_data(b"tail")
    toxic.on_remove()
    assert b"".join(sink.pieces) == CHUNK + b"tail"
