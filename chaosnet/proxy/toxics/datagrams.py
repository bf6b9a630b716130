"""What datagram toxics share: the pipe they sit in, their base class, held datagrams.

On a datagram proxy a stage's ``on_data`` receives exactly one datagram and every
``emit`` sends exactly one: datagram boundaries are never merged or split. A
stage may drop a datagram (``drop``), change it, emit it more than once, or hold
it and emit it later from a timer. What each toxic did is counted per flow
(``count``), for the flow log's ``toxic_counts``.

``probability`` attributes are drawn per datagram from the flow's seeded source
(one per toxic, flow and direction), so with the same seed and the same datagrams
in the same order the same datagrams are affected.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from chaosnet.proxy.toxics.base import Attr, Pipe, Toxic, ToxicSpec, Transport

if TYPE_CHECKING:
    from chaosnet.proxy.timers import Timer


class DatagramPipe(Pipe, Protocol):
    """A flow's path, as its stages see it."""

    def count(self, spec: ToxicSpec, what: str) -> None: ...

    def hold(self, count: int) -> None: ...


def probability_attr(default: float, help: str, *, required: bool = False) -> Attr:
    return Attr("probability", "float", default, maximum=1, help=help, required=required)


class DatagramToxic(Toxic):
    """Base of the toxics that act on datagrams; ``pipe`` is the flow's path."""

    in_toxiproxy = False
    transports: ClassVar[tuple[Transport, ...]] = ("udp",)
    __slots__ = ()  # empty: a datagram variant may also derive from its stream toxic

    @property
    def dpipe(self) -> DatagramPipe:
        return cast(DatagramPipe, self.pipe)

    def count(self, what: str) -> None:
        self.dpipe.count(self.spec, what)

    def float_attr(self, name: str) -> float:
        value = self.spec.attributes[name]
        assert isinstance(value, float)
        return value

    def chance(self, probability: float) -> bool:
        """One seeded draw: True with ``probability``."""
        if probability >= 1:
            return True
        return probability > 0 and self.pipe.rng(self.spec).random() < probability

    def drop_counted(self, data: bytes) -> None:
        self.drop(data)
        self.count("dropped")


class HeldDatagrams:
    """Datagrams each released at its own time, on the engine's timer queue.

    Releases happen in due order (equal times in the order held), so a datagram
    held for less time overtakes one held longer. ``release_all`` passes every
    held datagram on at once (a toxic removed); ``clear`` drops them (flow closed).
    A datagram may carry ``then``, called right after it is released.
    """

    __slots__ = ("_items", "_next", "_pipe", "_release")

    def __init__(self, pipe: Pipe, release: Callable[[bytes], None]) -> None:
        self._pipe = pipe
        self._release = release
        self._items: dict[int, _Item] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._items)

    def hold(self, due: float, data: bytes, then: Callable[[], None] | None = None) -> None:
        key = self._next
        self._next += 1
        timer = self._pipe.call_at(due, functools.partial(self._fire, key))
        self._items[key] = (due, data, timer, then)

    def _fire(self, key: int) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._pass_on(item)

    def _pass_on(self, item: _Item) -> None:
        _, data, _, then = item
        self._release(data)
        if then is not None:
            then()

    def release_all(self) -> None:
        items = sorted(self._items.items(), key=lambda entry: (entry[1][0], entry[0]))
        self._items.clear()
        for _, item in items:
            item[2].cancel()
            self._pass_on(item)

    def clear(self) -> None:
        for item in self._items.values():
            item[2].cancel()
        self._items.clear()


_Item = tuple[float, bytes, "Timer", "Callable[[], None] | None"]
