# myclient.py: one framed request per connection, retried with exponential backoff
import socket
import struct
import time

from chaosnet.framing import recv_frame


def run(ctx):
    retry = ctx.retry_settings  # attempts, deadline, backoff, initial, cap, multiplier
    attempts = retry.attempts if retry else 1
    for req in ctx.schedule():
        with req:  # an exception fails this request only
            for attempt in range(1, attempts + 1):
                req.attempts = attempt
                try:
                    with socket.create_connection(ctx.endpoints[0], timeout=ctx.timeout) as sock:
                        sock.sendall(struct.pack(">I", len(req.payload)) + req.payload)
                        reply = recv_frame(sock, max_frame_size=ctx.max_frame_size)
                    break
                except OSError:  # refused, reset, timed out; FrameTooLarge is not retried
                    if attempt == attempts:
                        raise
                    time.sleep(min(retry.cap, retry.initial * 2 ** (attempt - 1)))
            req.answer(reply, expected=req.payload)
