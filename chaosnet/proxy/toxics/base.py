"""A toxic's declaration and interface, and the spec of one toxic on a proxy.

A toxic type is one subclass of :class:`Toxic` in one file, registered in
``chaosnet.proxy.toxics.REGISTRY``. Its class attributes are the *one*
declaration of the type (see :class:`Toxic`); the control API's validation, the
scenario models and their JSON Schema, the control client's extension list and
the docs' toxic tables are all derived from it. An *instance* is the toxic's
state on one direction of one connection (a stage of that direction's chain),
made from a :class:`ToxicSpec`: the toxic as the API sees it.

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
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from chaosnet.proxy.framers import Protocol as WireProtocol
    from chaosnet.proxy.framers.base import Part
    from chaosnet.proxy.timers import Timer

EndKind = Literal["eof", "fin", "rst"]
Phase = Literal["stream", "listen", "accept"]
Stream = Literal["upstream", "downstream"]
Transport = Literal["tcp", "udp"]
ListenerMode = Literal["refuse", "stall"]
AttrKind = Literal["int", "float", "bool", "choice", "int_or_choice", "text", "headers"]

STREAMS: tuple[Stream, ...] = ("upstream", "downstream")
TRANSPORTS: tuple[Transport, ...] = ("tcp", "udp")
DEFAULT_STREAM: Stream = "downstream"
#: A toxic's fields in Toxiproxy's JSON, and the optional ones only chaosnet has.
TOXIPROXY_FIELDS = ("name", "type", "stream", "toxicity", "attributes")
EXTENSION_FIELDS = (
    "skip_connections",
    "max_connections",
    "seed",
    "skip_messages",
    "max_messages",
    "message_scope",
)
MESSAGE_SCOPES = ("connection", "proxy")

MAX_MS = 86_400_000  # a day: any longer delay is a mistake, not a test
#: The most pieces a stage passes on from one callback. A stage with more to send (a
#: slicer cutting 1-byte pieces) continues from the timer queue on the next turn, so
#: one callback costs about what one socket's turn in the poller does.
EMITS_PER_TURN = 64
#: The smallest non-zero magnitude a float attribute takes. A toxic's arithmetic on a
#: subnormal value (a probability of 1e-320) overflows -- log1p(-p) is -p, and a draw
#: divided by it is infinite -- so every float attribute refuses it here, once.
MIN_FRACTION = 1e-9
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
    """One attribute of a toxic: its JSON name, type, default, bounds, unit and help.

    ``choices`` are the strings a ``choice``/``int_or_choice`` takes; ``values``
    restricts an ``int`` to a set. ``required``: a scenario file must give it (the
    HTTP API falls back to ``default``, as Toxiproxy does). ``unit`` is Toxiproxy's
    (``ms``, ``µs``, ``bytes``, ``KB/s``); scenario files also take strings with units.
    """

    name: str
    kind: AttrKind
    default: object
    minimum: float = 0
    maximum: float = MAX_MS
    choices: tuple[str, ...] = ()
    values: tuple[int, ...] = ()
    unit: str = ""
    help: str = ""
    required: bool = False

    def coerce(self, value: object) -> object:
        """The validated value; :class:`FieldError` naming the attribute otherwise."""
        if self.kind in ("text", "headers"):
            return self._text(value) if self.kind == "text" else self._headers(value)
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
        if self.values and number not in self.values:
            raise self._error(f"must be {or_list(self.values)}, got {value}")
        if not self.minimum <= number <= self.maximum:
            raise self._error(f"must be between {self.minimum:g} and {self.maximum:g}, got {value}")
        if self.kind == "float" and 0 < abs(number) < MIN_FRACTION:
            raise self._error(f"must be 0 or at least {MIN_FRACTION:g}, got {value!r}")
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

    def _text(self, value: object) -> str:
        """A string of at most ``maximum`` characters (``text``)."""
        if not isinstance(value, str):
            raise self._error(f"must be a string, got {value!r}")
        if len(value) > self.maximum:
            raise self._error(f"must be at most {self.maximum:g} characters, got {len(value)}")
        return value

    def _headers(self, value: object) -> dict[str, str]:
        """An object of header names to string values (``headers``)."""
        if not isinstance(value, dict):
            raise self._error(f"must be an object of header names to strings, got {value!r}")
        for key, item in value.items():
            if not key or not isinstance(item, str) or any(c in key for c in " :\r\n"):
                raise self._error(f"{key!r}: must be a header name with a string value")
            if "\r" in item or "\n" in item:
                raise self._error(f"{key!r}: a header value cannot contain a line break")
        return dict(value)

    def _error(self, message: str) -> FieldError:
        return FieldError(f"attributes.{self.name}: {message}")


def or_list(items: tuple[object, ...]) -> str:
    """``(1, 2, 4, 8)`` as ``"1, 2, 4 or 8"``."""
    words = [str(item) for item in items]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


class Toxic:
    """Base class: a pass-through stage. Subclasses override the hooks they need.

    The class attributes are the toxic type's declaration:

    - ``type_name``: its name in the API and in scenario files;
    - ``summary``: the fault in a few words (the README's fault table);
    - ``effect``: what a client sees (the toxic table of docs/proxy.md);
    - ``attributes``: one :class:`Attr` each, in the order shown;
    - ``in_toxiproxy``: whether the real Toxiproxy has it (if not, it is a chaosnet
      extension: announced in ``/version``, refused by the client for Toxiproxy);
    - ``phase``: ``stream`` (a stage on the data path), ``listen`` (acts on the
      listening socket, in the ``listener_mode`` it declares; ``refuse`` wins
      over ``stall`` when both apply) or ``accept`` (acts on each accepted
      connection);
    - ``streams``: the directions it may be added on;
    - ``transports``: the proxy transports it works on; a toxic of both transports
      acts on datagrams through its ``datagram_stage`` (the same attributes,
      datagram behaviour), a class that names the toxic it serves when it is
      declared (``class DatagramLatency(DatagramToxic, datagrams_of=LatencyToxic)``),
      and says what a datagram client sees in ``datagram_effect`` (and, if it
      differs, ``datagram_summary``);
    - ``protocols``: if not empty, the proxy must speak one of these protocols
      (a message-aware toxic); empty means any byte stream.

    ``check`` validates across attributes.
    """

    type_name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    effect: ClassVar[str] = ""
    attributes: ClassVar[tuple[Attr, ...]] = ()
    in_toxiproxy: ClassVar[bool] = True
    phase: ClassVar[Phase] = "stream"
    listener_mode: ClassVar[ListenerMode | None] = None
    streams: ClassVar[tuple[Stream, ...]] = STREAMS
    transports: ClassVar[tuple[Transport, ...]] = ("tcp",)
    protocols: ClassVar[tuple[str, ...]] = ()
    datagram_summary: ClassVar[str] = ""
    datagram_effect: ClassVar[str] = ""
    datagram_stage: ClassVar[type[Toxic] | None] = None

    __slots__ = ("ended", "next", "pipe", "spec")

    def __init_subclass__(cls, datagrams_of: type[Toxic] | None = None, **kwargs: Any) -> None:
        """``datagrams_of``: this class is that toxic's ``datagram_stage``."""
        super().__init_subclass__(**kwargs)
        if datagrams_of is not None:
            datagrams_of.datagram_stage = cls

    @classmethod
    def stage(cls, transport: Transport) -> type[Toxic]:
        """The class whose instances act on a proxy of ``transport``: this one, except on
        a datagram proxy for a toxic with a ``datagram_stage``."""
        if transport == "udp" and cls.datagram_stage is not None:
            return cls.datagram_stage
        return cls

    @classmethod
    def check(cls, values: Mapping[str, object]) -> None:
        """Cross-attribute validation; raise :class:`FieldError`. Values are coerced."""

    @classmethod
    def default_stream(cls) -> Stream:
        return DEFAULT_STREAM if DEFAULT_STREAM in cls.streams else cls.streams[0]

    @classmethod
    def misfit(cls, transport: str, protocol: str | None) -> str | None:
        """Why this toxic cannot go on a proxy of ``transport`` speaking ``protocol``."""
        if transport not in cls.transports:
            works = " or ".join(cls.transports)
            return f"{cls.type_name} works on {works} proxies, not on a {transport} proxy"
        if cls.protocols and protocol not in cls.protocols:
            needs = " or ".join(cls.protocols)
            return f"{cls.type_name} needs a proxy with protocol {needs}, not {protocol or 'none'}"
        return None

    @classmethod
    def check_protocol(cls, protocol: WireProtocol, values: Mapping[str, object]) -> None:
        """Validation against the proxy's protocol; raise :class:`FieldError`."""

    @classmethod
    def uses_messages(cls, values: Mapping[str, object]) -> bool:
        """On a proxy with a protocol, does it need the message gate even untargeted?"""
        return bool(cls.protocols)

    @classmethod
    def wants(cls, part: Part, values: Mapping[str, object]) -> bool:
        """Which pieces of a targeted message the toxic acts on (the rest pass it by)."""
        return True

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

    def on_part(self, data: bytes, part: Part) -> None:
        """A message toxic's input: ``data`` is the piece ``part`` describes."""
        self.on_data(data)

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

    def release(self, item: bytes | End) -> None:
        """Pass on a held chunk or end."""
        if isinstance(item, End):
            self.emit_end(item)
        else:
            self.emit(item)

    def cut(self, kind: EndKind) -> None:
        """Close the whole connection (``fin``) or reset it (``rst``), after what came before."""
        self.emit_end(End(kind, self.by))

    def drop(self, data: bytes) -> None:
        self.pipe.dropped(len(data))


Entry = TypeVar("Entry")


class Timed(Toxic):
    """A stage with at most one pending ``timer`` (a deadline, its next release).

    :meth:`arm` replaces what was armed; closing the connection cancels it. A
    timer's callback sets ``timer`` to None first: a stage reads "nothing armed"
    from it.
    """

    __slots__ = ("timer",)

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.timer: Timer | None = None

    def arm(self, when: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` at ``when`` (``time.monotonic()``) instead of what was armed."""
        cancel(self.timer)
        self.timer = self.pipe.call_at(when, callback)

    def disarm(self) -> None:
        cancel(self.timer)
        self.timer = None

    def cut_at(self, when: float, kind: EndKind) -> None:
        """Cut the connection (``fin`` or ``rst``) at ``when`` instead of what was armed."""
        self.arm(when, self._cut_fin if kind == "fin" else self._cut_rst)

    def _cut_fin(self) -> None:
        self.timer = None
        self.cut("fin")

    def _cut_rst(self) -> None:
        self.timer = None
        self.cut("rst")

    def on_close(self) -> None:
        self.disarm()


class Holding(Timed, Generic[Entry]):
    """A stage that holds what passes in ``queue``, paced by its one ``timer``.

    Removing it passes everything held on at once, in order; closing the
    connection drops it. ``held`` says which chunk or end an entry is.
    """

    __slots__ = ("queue",)

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.queue: deque[Entry] = deque()

    def held(self, entry: Entry) -> bytes | End:
        assert isinstance(entry, bytes | End)
        return entry

    def on_remove(self) -> None:
        self.disarm()
        while self.queue:
            self.release(self.held(self.queue.popleft()))

    def on_close(self) -> None:
        self.disarm()
        self.queue.clear()


class ToxicSpec:
    """A toxic on a proxy as the API sees it: name, type, stream, toxicity, attributes,
    and chaosnet's targeting fields and seed (see :mod:`chaosnet.proxy.targeting`).

    One per toxic on a proxy; the per-connection state lives in the :class:`Toxic`
    stages made from it.
    """

    __slots__ = (
        "attributes",
        "cls",
        "first_seq",
        "framed",
        "max_connections",
        "max_messages",
        "message_scope",
        "messages_seen",
        "name",
        "seed",
        "skip_connections",
        "skip_messages",
        "stream",
        "toxicity",
        "type_name",
    )

    def __init__(
        self,
        *,
        name: str,
        cls: type[Toxic],
        stream: str,
        toxicity: float,
        attributes: dict[str, object],
        skip_connections: int = 0,
        max_connections: int | None = None,
        seed: int | None = None,
        skip_messages: int = 0,
        max_messages: int | None = None,
        message_scope: str = "connection",
    ) -> None:
        self.name = name
        self.cls = cls
        self.type_name = cls.type_name
        self.stream = stream
        self.toxicity = toxicity
        self.attributes = attributes
        self.skip_connections = skip_connections
        self.max_connections = max_connections
        self.seed = seed
        self.first_seq = 0  # set by the proxy: its accept count when the toxic was added
        # Message targeting (a proxy with a protocol; see chaosnet/proxy/gate.py): the
        # toxic acts on messages [skip, skip + max) of its stream, counted per connection
        # or, with message_scope "proxy", across the proxy's connections since it was added.
        self.skip_messages = skip_messages
        self.max_messages = max_messages
        self.message_scope = message_scope
        self.messages_seen = 0  # message_scope "proxy": messages counted so far
        self.framed = False  # set by the proxy: the stage sits in a message gate

    @property
    def message_targeted(self) -> bool:
        """Any message targeting field set (they need a proxy with a protocol)."""
        counted = self.skip_messages > 0 or self.max_messages is not None
        return counted or self.message_scope != "connection"

    def targets_message(self, k: int) -> bool:
        if k < self.skip_messages:
            return False
        return self.max_messages is None or k < self.skip_messages + self.max_messages

    def index_of(self, seq: int) -> int:
        """``k``: the connection's number counted from this toxic's creation."""
        return seq - self.first_seq

    def effective_seed(self, server_seed: int) -> int:
        return server_seed if self.seed is None else self.seed

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's fields in its order; extension fields only when set."""
        body: dict[str, Any] = {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type_name,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }
        if self.skip_connections:
            body["skip_connections"] = self.skip_connections
        if self.max_connections is not None:
            body["max_connections"] = self.max_connections
        if self.seed is not None:
            body["seed"] = self.seed
        if self.skip_messages:
            body["skip_messages"] = self.skip_messages
        if self.max_messages is not None:
            body["max_messages"] = self.max_messages
        if self.message_scope != "connection":
            body["message_scope"] = self.message_scope
        return body


def cancel(timer: Timer | None) -> None:
    if timer is not None:
        timer.cancel()


def ms(value: object) -> float:
    """Milliseconds (an int attribute) in seconds."""
    assert isinstance(value, int | float)
    return value / 1000.0
