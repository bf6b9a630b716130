"""Clients for the exploration tests: one with a compound bug, one correct twin.

Both are callable workloads (``tests.explore.clients:NAME``), written with raw
sockets and chaosnet's framing, as a user's own client would be.
"""

from __future__ import annotations

import socket

from chaosnet.framing import recv_frame, send_frame
from chaosnet.retry import Endpoint
from chaosnet.scenario.workloads import Request, WorkloadContext


def _exchange(endpoint: Endpoint, payload: bytes, timeout: float) -> bytes:
    with socket.create_connection(endpoint, timeout=timeout) as sock:
        send_frame(sock, payload)
        reply = recv_frame(sock)
    if reply is None:
        raise ConnectionResetError("closed before the reply")
    return reply


def last_resort(ctx: WorkloadContext) -> None:
    """Retries the primary with backoff, but tries the fallback once, as a last resort.

    The bug needs two faults at once: with the primary down, one failure on the
    fallback (a reset, a slow reply) ends the request, although the fallback
    would answer the next try. Any single fault passes: the primary alone down
    is covered by the fallback, and a fault on the fallback alone is never seen.
    """
    primary, *fallbacks = ctx.endpoints
    for req in ctx.schedule():
        with req:
            req.attempts = 0
            for attempt in ctx.policy.retrying(f"request {req.index}"):
                with attempt:
                    req.attempts += 1
                    reply = _via(primary, fallbacks, req, ctx)
            req.answer(reply, expected=req.payload)


def _via(primary: Endpoint, fallbacks: list[Endpoint], req: Request, ctx: WorkloadContext) -> bytes:
    try:
        req.endpoint = primary
        return _exchange(primary, req.payload, ctx.timeout)
    except OSError:
        if not fallbacks:
            raise
    req.endpoint = fallbacks[0]
    try:
        return _exchange(fallbacks[0], req.payload, ctx.timeout)
    except OSError as exc:  # the bug: "both are down", so give up at once
        raise GaveUp(f"primary and fallback both failed: {exc}") from exc


class GaveUp(Exception):
    """Not transient: the retry loop stops at it."""


def persistent(ctx: WorkloadContext) -> None:
    """The correct twin: every attempt tries the primary, then each fallback."""
    for req in ctx.schedule():
        with req:
            req.attempts = 0
            for attempt in ctx.policy.retrying(f"request {req.index}"):
                with attempt:
                    req.attempts += 1
                    reply = _any(ctx.endpoints, req, ctx)
            req.answer(reply, expected=req.payload)


def _any(endpoints: list[Endpoint], req: Request, ctx: WorkloadContext) -> bytes:
    error: OSError | None = None
    for endpoint in endpoints:
        req.endpoint = endpoint
        try:
            return _exchange(endpoint, req.payload, ctx.timeout)
        except OSError as exc:
            error = exc
    assert error is not None
    raise error
