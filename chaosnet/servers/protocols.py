"""The per-connection protocols of the builtin servers: raw echo, framed request/answer,
and the datagram echo."""

from __future__ import annotations

from collections.abc import Callable

from chaosnet.datagram import MalformedDatagram, decode, encode
from chaosnet.framing import FrameDecoder, FrameError, IncompleteFrame, frame_format
from chaosnet.servers.builtin_runtime import ServerContext, ServerProtocol


class EchoProtocol(ServerProtocol):
    """Every byte received is sent back; the peer's EOF closes the connection once flushed."""

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False


FrameHandler = Callable[[bytes], bytes]


class FramedProtocol(ServerProtocol):
    """Each request frame gets one answer frame from ``handler``, in order.

    Frames are cut by chaosnet's sans-IO ``FrameDecoder``: the same parser as the
    clients'. A frame over the limit or a stream cut inside a frame is logged and
    ends that connection only.
    """

    def __init__(self, ctx: ServerContext, handler: FrameHandler, max_frame_size: int) -> None:
        super().__init__(ctx)
        self._handler = handler
        self._decoder = FrameDecoder(max_frame_size)
        self._format = frame_format(max_frame_size)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            answers = [self._format.encode(self._handler(p)) for p in self._decoder.feed(data)]
        except FrameError as exc:
            self.fail("bad frame", exc)
            return
        except Exception as exc:  # a bug in a handler must not take the server down
            self.fail("handler failed", exc)
            return
        if answers:
            self.transport.write(answers[0] if len(answers) == 1 else b"".join(answers))

    def eof_received(self) -> bool:
        try:
            self._decoder.eof()
        except IncompleteFrame as exc:
            self.ctx.log(f"connection from {self.peer}: truncated frame: {exc}")
        return False


def echo_payload(payload: bytes) -> bytes:
    return payload


def datagram_echo(datagram: bytes) -> bytes | None:
    """``udp_echo``: a chaosnet.datagram request answered with its payload, same id.

    Anything else (malformed, cut, corrupted, or a reply) gets no answer: a client
    waiting for it sees silence, as a real UDP service would give it.
    """
    try:
        message = decode(datagram)
    except MalformedDatagram:
        return None
    if message.kind != "request":
        return None
    return encode("reply", message.request_id, message.payload)
