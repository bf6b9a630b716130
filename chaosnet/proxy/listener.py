"""A proxy's listening socket, and the connect-phase faults that act on it.

Modes:

- ``accept``: normal; connections are accepted as fast as they arrive.
- ``refuse`` (``refuse_new``): the listening socket is closed, so the kernel
  answers new SYNs with RST and ``connect()`` fails with ``ECONNREFUSED``.
  Connections already accepted are untouched; ones already completed in the
  backlog are accepted first, since their clients consider them established.
  Leaving the mode binds the same address again.
- ``stall`` (``stall_accept``): the socket stays bound and listening but its
  backlog is set to 0 with a second ``listen()`` (Linux updates the backlog of a
  listening socket in place) and accepting stops. One *filler* connection made by
  the listener itself then occupies the single accept-queue slot, and Linux drops
  every further SYN while the queue is full, so a new ``connect()`` hangs in
  SYN_SENT until the client's own timeout. The fill is verified through
  ``TCP_INFO`` (for a listener ``tcpi_unacked`` is the queue length). Leaving the
  mode restores the backlog, closes the fillers and accepts the rest; clients still
  retrying their SYN get through on their next retransmission.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Callable
from typing import Literal

from chaosnet.proxy.addresses import family_of

Mode = Literal["accept", "refuse", "stall"]
BACKLOG = socket.SOMAXCONN
ACCEPT_BATCH = 128
EMFILE_PAUSE_S = 0.05
STALL_CHECK_S = 0.001
STALL_CHECK_TRIES = 500
_TCP_INFO_SIZE = 104
_UNACKED_OFFSET = 24
_OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

AcceptHandler = Callable[[socket.socket, tuple[str, int]], None]


class StallFailed(RuntimeError):
    """The accept queue could not be filled, so new connects would not stall."""


class Listener:
    def __init__(self, loop: asyncio.AbstractEventLoop, on_accept: AcceptHandler) -> None:
        self.loop = loop
        self.on_accept = on_accept
        self.sock: socket.socket | None = None
        self.address: tuple[str, int] | None = None
        self.mode: Mode = "accept"
        self._fillers: list[socket.socket] = []
        self._accepting = False

    def open(self, host: str, port: int) -> tuple[str, int]:
        """Bind and listen; the bound (host, port). Raises OSError (e.g. address in use)."""
        self.sock = self._bind(host, port)
        name = self.sock.getsockname()
        self.address = (name[0], name[1])
        self.mode = "accept"
        self._start_accepting()
        return self.address

    def _bind(self, host: str, port: int) -> socket.socket:
        sock = socket.socket(family_of(host), socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def close(self) -> None:
        self._stop_accepting()
        self._close_fillers()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # -- accepting ----------------------------------------------------------------------

    def _start_accepting(self) -> None:
        if not self._accepting and self.sock is not None:
            self._accepting = True
            self.loop.add_reader(self.sock.fileno(), self._accept_ready)

    def _stop_accepting(self) -> None:
        if self._accepting and self.sock is not None:
            self._accepting = False
            self.loop.remove_reader(self.sock.fileno())

    def _accept_ready(self) -> None:
        self._accept_pending(ACCEPT_BATCH)

    def _accept_pending(self, limit: int) -> None:
        assert self.sock is not None
        for _ in range(limit):
            try:
                sock, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_FDS:  # let some connections finish, then retry
                    self._stop_accepting()
                    self.loop.call_later(EMFILE_PAUSE_S, self._resume_after_emfile)
                return
            if self._is_filler(address):
                sock.close()
            else:
                self.on_accept(sock, (address[0], address[1]))

    def _resume_after_emfile(self) -> None:
        if self.mode == "accept":
            self._start_accepting()

    # -- connect-phase modes ---------------------------------------------------------------

    def set_mode(self, mode: Mode) -> None:
        """Switch mode now; for ``stall`` await :meth:`wait_stalled` to verify it."""
        if mode == self.mode or self.address is None:
            return
        if self.mode == "refuse":
            self.sock = self._bind(*self.address)
        elif self.mode == "stall":
            self._unstall()
        self.mode = "accept"
        if mode == "refuse":
            self._refuse()
        elif mode == "stall":
            self._stall()
        else:
            self._start_accepting()
        self.mode = mode

    def _refuse(self) -> None:
        assert self.sock is not None
        self._stop_accepting()
        self._accept_pending(BACKLOG)
        self.sock.close()
        self.sock = None

    def _stall(self) -> None:
        assert self.sock is not None
        assert self.address is not None
        self._stop_accepting()
        self._accept_pending(BACKLOG)
        self.sock.listen(0)
        filler = socket.socket(self.sock.family, socket.SOCK_STREAM)
        filler.setblocking(False)
        self._fillers.append(filler)
        code = filler.connect_ex(self.address)
        if code not in (0, errno.EINPROGRESS, errno.EAGAIN):
            raise StallFailed(f"filler connect failed: {errno.errorcode.get(code, code)}")

    async def wait_stalled(self) -> None:
        """Return once the accept queue is full (new SYNs are dropped); bounded."""
        for _ in range(STALL_CHECK_TRIES):
            if self.mode != "stall" or self._queue_length() >= 1:
                return
            await asyncio.sleep(STALL_CHECK_S)
        raise StallFailed("the accept queue did not fill; new connects would not stall")

    def _queue_length(self) -> int:
        assert self.sock is not None
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
        return int(struct.unpack_from("I", info, _UNACKED_OFFSET)[0])

    def _unstall(self) -> None:
        assert self.sock is not None
        self.sock.listen(BACKLOG)
        self._accept_pending(BACKLOG)
        self._close_fillers()
        self._start_accepting()

    def _is_filler(self, address: tuple[str, int]) -> bool:
        if not self._fillers:
            return False
        for filler in self._fillers:
            try:
                if filler.getsockname()[:2] == address[:2]:
                    return True
            except OSError:
                continue
        return False

    def _close_fillers(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._fillers.clear()
