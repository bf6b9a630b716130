"""Deliberately naive clients: the scenario runner must catch each of them.

A scenario naming one of these is code: it is imported and run.
"""

from __future__ import annotations

import socket

from chaosnet.framing import recv_frame, send_frame
from chaosnet.kv import Ack, Put, decode_response, encode_request
from chaosnet.scenario.workloads import WorkloadContext

DEFAULT_PAYLOAD = b"ping"


def no_retry(ctx: WorkloadContext) -> None:
    """One connection per request, one attempt, no retry: any fault is a lost request."""
    for req in ctx.schedule():
        with req, socket.create_connection(ctx.endpoints[0], timeout=ctx.timeout) as sock:
            send_frame(sock, req.payload)
            req.answer(recv_frame(sock), expected=req.payload)


def resend_with_new_id(ctx: WorkloadContext) -> None:
    """Resends a kv write after a timeout under a *new* request id: a non-idempotent resend.

    The server cannot tell the resend from a new write, so a write whose first
    copy arrived (only the acknowledgement was lost) is applied twice.
    """
    for req in ctx.schedule():
        with req:
            req.attempts = 0
            for attempt in range(1, 20):
                req.attempts = attempt
                put = Put(req.key, req.value, request_id=f"{req.index}-attempt-{attempt}")
                try:
                    with socket.create_connection(ctx.endpoints[0], timeout=ctx.timeout) as sock:
                        send_frame(sock, encode_request(put))
                        reply = recv_frame(sock)
                except OSError:
                    continue
                if reply is None:  # closed before answering: try again, under a new id
                    continue
                req.answer(type(decode_response(reply)), expected=Ack)
                break


def retries_everything(ctx: WorkloadContext) -> None:
    """Retries every error, permanent ones included (a frame over its limit)."""
    for req in ctx.schedule():
        with req:
            req.attempts = 0
            last: Exception | None = None
            for attempt in range(1, 4):
                req.attempts = attempt
                try:
                    with socket.create_connection(ctx.endpoints[0], timeout=ctx.timeout) as sock:
                        send_frame(sock, req.payload)
                        reply = recv_frame(sock, max_frame_size=ctx.options["max_reply"])
                    req.answer(reply, expected=req.payload)
                    break
                except Exception as exc:  # the naivety under test
                    last = exc
            else:
                assert last is not None
                raise last


def gives_up_on_permanent_errors(ctx: WorkloadContext) -> None:
    """Like ``retries_everything``, but a permanent error ends the request at once."""
    from chaosnet.retry import is_transient

    for req in ctx.schedule():
        with req:
            req.attempts = 0
            for attempt in range(1, 4):
                req.attempts = attempt
                try:
                    with socket.create_connection(ctx.endpoints[0], timeout=ctx.timeout) as sock:
                        send_frame(sock, req.payload)
                        reply = recv_frame(sock, max_frame_size=ctx.options["max_reply"])
                    req.answer(reply, expected=req.payload)
                    break
                except Exception as exc:
                    if not is_transient(exc) or attempt == 3:
                        raise


def leaks_a_socket(ctx: WorkloadContext) -> None:
    """Answers every request but never closes its connection."""
    sock = socket.create_connection(ctx.endpoints[0], timeout=ctx.timeout)
    for req in ctx.schedule():
        with req:
            send_frame(sock, req.payload)
            req.answer(recv_frame(sock), expected=req.payload)
    ctx.options["leaked"] = sock  # kept alive on purpose


def ignores_the_schedule(ctx: WorkloadContext) -> None:
    """Never iterates ``ctx.schedule()``: count-based steps cannot fire."""


def crashes(ctx: WorkloadContext) -> None:
    """Raises out of the workload (outside any request) after two requests."""
    for req in ctx.schedule():
        if req.index == 2:
            raise RuntimeError("the client gave up")
        with req, socket.create_connection(ctx.endpoints[0], timeout=ctx.timeout) as sock:
            send_frame(sock, req.payload)
            req.answer(recv_frame(sock), expected=req.payload)
