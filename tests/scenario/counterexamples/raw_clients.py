"""A hand-written raw-socket framed client, correct, and its buggy twins (one bug each).

Written to the callable-workload contract of docs/scenarios.md only: no chaosnet
primitive, its own framing, retries and errors. ``correct`` must survive the
whole battery; each twin differs by one flag and must fail ``chaosnet check``.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, replace

from chaosnet.scenario.workloads import Request, WorkloadContext

HEADER = struct.Struct(">I")
LEAKED: list[socket.socket] = []  # never used: the leaking twin drops its sockets


class FrameTooLarge(Exception):
    """The peer announced a frame over our limit: permanent, never retried."""


class ShortRead(ConnectionError):
    """The connection ended inside a frame: transient."""


class MayHaveBeenDelivered(Exception):
    """A non-idempotent request failed after it was sent: not resent."""


@dataclass(frozen=True)
class Behaviour:
    """What a correct client does; each buggy twin turns one of these off."""

    backoff: bool = True  # wait (exponentially) between attempts
    deadline: bool = True  # give up when the retry deadline is spent
    length_limit: bool = True  # refuse frames over ctx.max_frame_size
    retry_permanent: bool = False  # retry errors that cannot heal
    close_on_error: bool = True  # close the socket on every path
    connect_timeout: bool = True  # bound the connect
    whole_frames: bool = True  # an end of stream inside a frame is an error
    count_attempts: bool = True  # tell the runner how many attempts (req.attempts)
    honour_idempotent: bool = True  # never resend a non-idempotent request once sent


CORRECT = Behaviour()


def _recv_exactly(sock: socket.socket, count: int, whole: bool) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(min(65536, count - len(data)))
        if not chunk:
            if whole:
                raise ShortRead(f"connection ended after {len(data)} of {count} bytes")
            return bytes(data)  # the bug: a truncated frame taken as a short reply
        data += chunk
    return bytes(data)


def _read_reply(sock: socket.socket, limit: int, how: Behaviour) -> bytes:
    (length,) = HEADER.unpack(_recv_exactly(sock, HEADER.size, True))
    if how.length_limit and length > limit:
        raise FrameTooLarge(f"reply frame of {length} bytes, limit {limit}")
    return _recv_exactly(sock, length, how.whole_frames)


def _transient(exc: BaseException, how: Behaviour) -> bool:
    if isinstance(exc, FrameTooLarge | MayHaveBeenDelivered):
        return how.retry_permanent
    return isinstance(exc, OSError)  # refused, reset, timeouts, short reads


def _delay(attempt: int, ctx: WorkloadContext, how: Behaviour) -> float:
    settings = ctx.retry_settings
    if not how.backoff or settings is None:
        return 0.0
    return float(min(settings.cap, settings.initial * settings.multiplier ** (attempt - 1)))


def _one_attempt(
    ctx: WorkloadContext, endpoint: tuple[str, int], req: Request, budget: float, how: Behaviour
) -> bytes:
    timeout = max(0.001, min(ctx.timeout, budget))
    sent = False
    sock = socket.create_connection(endpoint, timeout=timeout if how.connect_timeout else None)
    try:
        sock.settimeout(timeout)
        sock.sendall(HEADER.pack(len(req.payload)) + req.payload)
        sent = True  # from here on the server may have it
        reply = _read_reply(sock, ctx.max_frame_size, how)
    except OSError as exc:
        if how.close_on_error:
            sock.close()
        if sent and not ctx.idempotent and how.honour_idempotent:
            raise MayHaveBeenDelivered(f"request {req.index} may have arrived") from exc
        raise  # the leaking twin drops the socket here
    except BaseException:
        if how.close_on_error:
            sock.close()
        raise
    sock.close()
    return reply


def run(ctx: WorkloadContext, how: Behaviour = CORRECT) -> None:
    """One connection per attempt; retries transient errors with backoff, within the
    file's attempts and deadline, moving to the next endpoint after a failure."""
    settings = ctx.retry_settings
    attempts = settings.attempts if settings is not None else 1
    deadline = settings.deadline if settings is not None and how.deadline else None
    current = 0  # the endpoint that last worked: the primary, then the fallbacks in turn
    for req in ctx.schedule():
        with req:
            start = time.monotonic()
            for attempt in range(1, attempts + 1):
                if how.count_attempts:
                    req.attempts = attempt
                budget = ctx.timeout if deadline is None else deadline - (time.monotonic() - start)
                try:
                    reply = _one_attempt(ctx, ctx.endpoints[current], req, budget, how)
                except Exception as exc:
                    spent = deadline is not None and time.monotonic() - start >= deadline
                    if attempt == attempts or spent or not _transient(exc, how):
                        raise
                    current = (current + 1) % len(ctx.endpoints)
                    time.sleep(_delay(attempt, ctx, how))
                    continue
                req.answer(reply, expected=req.payload)
                break


def _twin(**bug: bool) -> Behaviour:
    return replace(CORRECT, **bug)


def correct(ctx: WorkloadContext) -> None:
    run(ctx)


def correct_without_attempt_counts(ctx: WorkloadContext) -> None:
    """Correct, but never sets ``req.attempts``: the wire must count its retries."""
    run(ctx, _twin(count_attempts=False))


def leaks_on_error(ctx: WorkloadContext) -> None:
    run(ctx, _twin(close_on_error=False))


def tight_retry_loop(ctx: WorkloadContext) -> None:
    """No backoff, and it does not report its attempts either (only the wire can tell)."""
    run(ctx, _twin(backoff=False, count_attempts=False))


def no_length_limit(ctx: WorkloadContext) -> None:
    run(ctx, _twin(length_limit=False))


def retries_permanent_errors(ctx: WorkloadContext) -> None:
    run(ctx, _twin(retry_permanent=True))


def no_deadline(ctx: WorkloadContext) -> None:
    run(ctx, _twin(deadline=False))


def no_connect_timeout(ctx: WorkloadContext) -> None:
    run(ctx, _twin(connect_timeout=False))


def truncated_frame_as_short_reply(ctx: WorkloadContext) -> None:
    run(ctx, _twin(whole_frames=False))


def resends_non_idempotent(ctx: WorkloadContext) -> None:
    run(ctx, _twin(honour_idempotent=False))
