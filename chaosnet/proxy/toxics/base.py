"""The interface every toxic implements, and the attribute schema it declares.

A toxic type is one subclass of :class:`Toxic` in one file, registered in
``chaosnet.proxy.toxics.REGISTRY``. Its class attributes describe it to the API
(``type_name``, ``attributes`` -- the schema the control API validates against --
``phase`` and ``in_toxiproxy``); an *instance* is the toxic's state on one
direction of one connection (a stage of that direction's chain).

Data flows through a chain of stages::

    source socket -> stage 1 -> stage 2 -> ... -> sink (destination socket)

Each stage receives ``on_data(bytes)`` and finally ``on_end(End)`` and passes what
it wants downstream with :meth:`Toxic.emit` / :meth:`Toxic.emit_end`, now or later
from a timer. Everything runs on the proxy's event loop thread, so a stage never
needs a lock, and adding, updating or removing a toxic is immediate.

An :class:`End` is either ``eof`` (the source half-closed: the sink half-closes its
side after the data before it) or a cut made by a toxic, ``fin`` or ``rst``, which
closes the whole connection once it reaches the sink (``rst`` with ``SO_LINGER`` 0,
a real TCP reset).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from chaosnet.proxy.timers import Timer
    from chaosnet.proxy.toxics.spec import ToxicSpec

EndKind = Literal["eof", "fin", "rst"]
Phase = Literal["stream", "listen", "accept"]
AttrKind = Literal["int", "float", "bool", "choice", "int_or_choice"]

MAX_MS = 86_400_000  # a day: any longer delay is a mistake, not a test
MAX_BYTES = 2**62


@dataclass(frozen=True, slots=True)
class End:
    """The end of a direction's data: a half-close (``eof``) or a cut (``fin``/``rst``)."""

    kind: EndKind
    by: str  # "client", "upstream" or "toxic <name>"


class Receiver(Protocol):
    def on_data(self, data: bytes) -> None: ...

    def on_end(self, end: End) -> None: ...


class Pipe(Protocol):
    """What a stage may use from the direction it sits in.

    Times are ``time.monotonic()`` seconds. ``call_at`` schedules on the engine's
    timer queue; ``is_due`` says whether a timer for that time would run now (the
    queue's alarm may run timers slightly early where its clock is coarse), so a
    stage releases what is due instead of arming a timer for it.
    """

    stream: str

    def now(self) -> float: ...

    def is_due(self, when: float) -> bool: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer: ...

    def dropped(self, count: int) -> None: ...

    def rng(self, spec: ToxicSpec) -> random.Random: ...

    @property
    def opened_at(self) -> float: ...


class FieldError(ValueError):
    """An attribute value the schema rejects; the message names the attribute."""


@dataclass(frozen=True)
class Attr:
    """One attribute of a toxic: its JSON name, type, default, bounds and unit."""

    name: str
    kind: AttrKind
    default: object
    minimum: float = 0
    maximum: float = MAX_MS
    choices: tuple[str, ...] = ()
    unit: str = ""
    help: str = ""

    def coerce(self, value: object) -> object:
        """The validated value; :class:`FieldError` naming the attribute otherwise."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise self._error(f"must be true or false, got {value!r}")
            return value
        if isinstance(value, str) and self.kind in ("choice", "int_or_choice"):
            if value not in self.choices:
                raise self._error(f"must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        if self.kind == "choice":
            raise self._error(f"must be one of {', '.join(self.choices)}, got {value!r}")
        number = self._number(value)
        if not self.minimum <= number <= self.maximum:
            raise self._error(f"must be between {self.minimum:g} and {self.maximum:g}, got {value}")
        return number

    def _number(self, value: object) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(f"must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self._error(f"must be finite, got {value!r}")
        if self.kind == "float":
            return float(value)
        if isinstance(value, float):
            if not value.is_integer():
                raise self._error(f"must be a whole number, got {value!r}")
            return int(value)
        return value

    def _error(self, message: str) -> FieldError:
        return FieldError(f"attributes.{self.name}: {message}")


class Toxic:
    """Base class: a pass-through stage. Subclasses override the hooks they need."""

    type_name: ClassVar[str] = ""
    attributes: ClassVar[tuple[Attr, ...]] = ()
    phase: ClassVar[Phase] = "stream"
    in_toxiproxy: ClassVar[bool] = True
    summary: ClassVar[str] = ""

    __slots__ = ("ended", "next", "pipe", "spec")

    @classmethod
    def check(cls, values: Mapping[str, object]) -> None:
        """Cross-attribute validation; raise :class:`FieldError`. Values are coerced."""

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        self.spec = spec
        self.pipe = pipe
        self.next = downstream
        self.ended = False  # an End went downstream: later data is dropped

    @property
    def by(self) -> str:
        return f"toxic {self.spec.name}"

    def attr(self, name: str) -> object:
        return self.spec.attributes[name]

    def int_attr(self, name: str) -> int:
        value = self.spec.attributes[name]
        assert isinstance(value, int)
        return value

    # -- hooks ----------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        self.emit(data)

    def on_end(self, end: End) -> None:
        self.emit_end(end)

    def on_update(self) -> None:
        """The spec's attributes changed (live connections see the new values)."""

    def on_remove(self) -> None:
        """The toxic is being removed: pass on anything held, cancel timers."""

    def on_close(self) -> None:
        """The connection is gone: cancel timers, drop what is held."""

    # -- helpers for subclasses -------------------------------------------------

    def emit(self, data: bytes) -> None:
        self.next.on_data(data)

    def emit_end(self, end: End) -> None:
        if not self.ended:
            self.ended = True
            self.next.on_end(end)

    def cut(self, kind: EndKind) -> None:
        """Close the whole connection (``fin``) or reset it (``rst``), after what came before."""
        self.emit_end(End(kind, self.by))

    def drop(self, data: bytes) -> None:
        self.pipe.dropped(len(data))


def cancel(timer: Timer | None) -> None:
    if timer is not None:
        timer.cancel()


def ms(value: object) -> float:
    """Milliseconds (an int attribute) in seconds."""
    assert isinstance(value, int | float)
    return value / 1000.0
