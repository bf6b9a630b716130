"""Figure 11: the message-aware proxy (issue 13) next to the plain proxy, in one run.

Every measurement uploads a stream of whole messages of one protocol to the
``drain`` upstream (which counts bytes until the half-close): directly, through a
plain chaosnet proxy, and through a chaosnet proxy declaring that protocol (no
toxic). The repetitions are interleaved over the paths.

- 11a-d: 1 MiB messages, MB/s; target: the protocol proxy keeps >= 0.85x the plain
  proxy's throughput;
- 11e-h: 100-byte messages, messages/s; target: >= 100,000 messages/s through the
  protocol proxy (the plain proxy's rate for the same bytes is shown beside it);
- 11i: the largest framer state of a connection (both directions and what they
  share), deep size in bytes, measured in this process over messages from 100 B to
  16 MiB (1 MiB with ``--quick``), inside heads, bodies and chunks; target < 4 KiB.

Toxiproxy has no protocols, so its column stays empty here.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from collections.abc import Callable

from benchmarks.clients import LoadError, connect, recv_exactly
from benchmarks.environment import CHAOSNET, DIRECT
from benchmarks.figures.common import Context, Sample, cost_details, medians, times
from benchmarks.report import Row
from benchmarks.stats import interleaved, ratio
from chaosnet.control import Address
from chaosnet.proxy.framers import PROTOCOLS, parse_protocol

PLAIN = "plain"
BLOCK = 4 << 20  # bytes per sendall: whole messages only
SIZE = struct.Struct("!Q")
MIN_RATIO = 0.85
MIN_RATE = 100_000
MAX_STATE = 4096


# -- messages of each protocol ----------------------------------------------------------------


def length_prefix_message(size: int) -> bytes:
    return struct.pack(">I", size - 4) + b"\xa5" * (size - 4)


def line_message(size: int) -> bytes:
    return b"a" * (size - 1) + b"\n"


def http1_message(size: int) -> bytes:
    head = b"POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n"
    return _fill(lambda body: head % body + b"b" * body, size)


def resp_message(size: int) -> bytes:
    frame = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n"
    return _fill(lambda body: frame % (body, b"v" * body), size)


def _fill(make: Callable[[int], bytes], size: int) -> bytes:
    """``make(body)`` with the body size that makes the whole message ``size`` bytes."""
    body = size - len(make(0))
    while len(make(body)) > size:  # the length's own digits
        body -= 1
    return make(body)


MESSAGES: dict[str, Callable[[int], bytes]] = {
    "length_prefix": length_prefix_message,
    "line": line_message,
    "http1": http1_message,
    "resp": resp_message,
}


def upload(address: Address, message: bytes, count: int, budget_s: float) -> float:
    """Seconds to send ``count`` copies of ``message`` and hear the drain counted them all."""
    per_block = max(1, BLOCK // len(message))
    block = memoryview(message * per_block)
    total = len(message) * count
    deadline = time.monotonic() + budget_s
    with connect(address) as sock:
        started = time.perf_counter()
        left = count
        while left > 0:
            now = min(left, per_block)
            sock.sendall(block[: now * len(message)])
            left -= now
            if time.monotonic() > deadline:
                raise LoadError(f"upload of {total} bytes exceeded {budget_s:g}s")
        sock.shutdown(socket.SHUT_WR)
        answer = recv_exactly(sock, SIZE.size)
        elapsed = time.perf_counter() - started
    counted = SIZE.unpack(answer)[0]
    if counted != total:
        raise LoadError(f"the drain counted {counted} of {total} bytes")
    return elapsed


def run(ctx: Context) -> list[Row]:
    drain = ctx.env.upstream().drain
    client = ctx.env.servers[CHAOSNET].client
    names: list[str] = []
    try:
        addresses: dict[str, Address] = {DIRECT: drain}
        for path in (PLAIN, *PROTOCOLS):
            name = f"bench-messages-{path}"
            protocol = None if path == PLAIN else path
            info = client.create_proxy(name, f"{drain[0]}:{drain[1]}", protocol=protocol)
            names.append(name)
            addresses[path] = info.address
        rows = _bulk(ctx, addresses) + _small(ctx, addresses)
    finally:
        for name in names:
            client.delete_proxy(name)
    return [*rows, _state_row(ctx)]


def _measure(
    ctx: Context, key: str, addresses: dict[str, Address], size: int, count: int
) -> dict[str, list[Sample]]:
    """Per path: seconds for ``count`` messages of ``size`` bytes (each path its protocol's)."""
    budget = ctx.plan.bulk_budget_s

    def measure(path: str, _: int) -> Sample:
        protocol = path if path in MESSAGES else "length_prefix"
        message = MESSAGES[protocol](size)
        with ctx.timed(key, CHAOSNET if path != DIRECT else DIRECT) as usage:
            seconds = upload(addresses[path], message, count, budget)
        return Sample(seconds, usage)

    return interleaved(list(addresses), ctx.plan.repetitions, measure)


def _bulk(ctx: Context, addresses: dict[str, Address]) -> list[Row]:
    size = 1 << 20
    count = 4 if ctx.plan.quick else max(1, ctx.plan.bulk_bytes // size)
    ctx.say(f"figure 11a-d: {count} messages of 1 MiB per protocol, framed vs plain")
    results = _measure(ctx, "11a", addresses, size, count)
    rates = {
        path: [Sample(count * size / s.value / 1e6, s.usage) for s in samples]
        for path, samples in results.items()
    }
    values = medians(rates)
    rows = []
    for number, protocol in enumerate(PROTOCOLS):
        framed, plain = values.get(protocol), values.get(PLAIN)
        to_plain = ratio(framed, plain)
        met = None if to_plain is None else to_plain >= MIN_RATIO
        compare = f"{times(to_plain)} plain proxy ({_fmt(plain)} MB/s)"
        details = cost_details(
            {p: rates[p] for p in (DIRECT, PLAIN, protocol)}, count * size / 1e9, "GB"
        )
        rows.append(
            Row(
                f"11{'abcd'[number]}",
                f"protocol {protocol}: 1 MiB messages, upload",
                "MB/s",
                {DIRECT: values.get(DIRECT), CHAOSNET: framed},
                f"≥ {MIN_RATIO}x plain proxy",
                met,
                compare,
                {"protocol/plain": to_plain},
                details | {"plain_MB_per_s": plain, "messages": count},
            )
        )
    return rows


def _small(ctx: Context, addresses: dict[str, Address]) -> list[Row]:
    size = 100
    count = 2_000 if ctx.plan.quick else ctx.plan.bulk_bytes // 16 // size
    ctx.say(f"figure 11e-h: {count} messages of 100 B per protocol, framed vs plain")
    results = _measure(ctx, "11e", addresses, size, count)
    rates = {
        path: [Sample(count / s.value, s.usage) for s in samples]
        for path, samples in results.items()
    }
    values = medians(rates)
    rows = []
    for number, protocol in enumerate(PROTOCOLS):
        framed, plain = values.get(protocol), values.get(PLAIN)
        met = None if framed is None else framed >= MIN_RATE
        compare = f"plain proxy {_fmt(plain)} msgs/s ({times(ratio(framed, plain))})"
        rows.append(
            Row(
                f"11{'efgh'[number]}",
                f"protocol {protocol}: 100 B messages, upload",
                "msgs/s",
                {DIRECT: values.get(DIRECT), CHAOSNET: framed},
                f"≥ {MIN_RATE:,} msgs/s",
                met,
                compare,
                {"protocol/plain": ratio(framed, plain)},
                cost_details({p: rates[p] for p in (DIRECT, PLAIN, protocol)})
                | {"plain_msgs_per_s": plain, "messages": count},
            )
        )
    return rows


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


# -- framer state ---------------------------------------------------------------------------


def deep_size(value: object, seen: set[int] | None = None) -> int:
    """Bytes of ``value`` and everything it holds (slots, containers), each object once."""
    seen = set() if seen is None else seen
    if id(value) in seen or value is None or isinstance(value, type):
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        size += sum(deep_size(item, seen) for item in value)
    for cls in type(value).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if hasattr(value, slot):
                size += deep_size(getattr(value, slot), seen)
    return size


def framer_states(largest: int) -> dict[str, dict[str, int]]:
    """Deep size of one connection's framers, stopped at awkward places, per protocol."""
    out: dict[str, dict[str, int]] = {}
    for protocol in PROTOCOLS:
        spec = parse_protocol(protocol, {})
        assert spec is not None
        cases: dict[str, int] = {}
        for size in (100, 64 << 10, largest):
            message = MESSAGES[protocol](size)
            for where, stop in (
                ("in head", 7),
                ("in body", len(message) // 2),
                ("after", len(message)),
            ):
                shared = spec.shared()
                up = spec.framer("upstream", shared)
                down = spec.framer("downstream", shared)
                up.summaries = []
                up.scan(message[:stop])
                cases[f"{size} B, {where}"] = deep_size((up, down, shared))
        out[protocol] = cases
    return out


def _state_row(ctx: Context) -> Row:
    ctx.say("figure 11i: framer state per connection (in memory)")
    states = framer_states(1 << 20 if ctx.plan.quick else 16 << 20)
    largest = max(max(cases.values()) for cases in states.values())
    return Row(
        "11i",
        "framer state per connection, largest",
        "bytes",
        {CHAOSNET: float(largest)},
        f"< {MAX_STATE} B",
        largest < MAX_STATE,
        ", ".join(f"{p} {max(c.values())}" for p, c in states.items()),
        {},
        {"framer_state_bytes": states},
    )
