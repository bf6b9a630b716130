"""The data plane's own epoll set, pumped by the event loop in bounded turns.

Proxied sockets are not registered with the event loop one by one. They live in
one ``select.epoll`` whose descriptor the loop watches; when it is readable the
loop calls :meth:`Poller.pump`, which handles ready sockets in batches for at most
``TURN_BUDGET_S`` and then returns, so the control API, the listeners and the
toxics' timers get a turn at least that often however many connections are
streaming. (Registered one by one, 500 busy sockets made one loop iteration last
tens of milliseconds and a control request take several iterations.) Epoll
re-queues a level-triggered descriptor behind the others once reported, so
sockets left over when a turn ends are served in the next one. A single
callback moves at most 1 MiB, so a turn lasts about ``TURN_BUDGET_S`` plus one
socket's work.

A descriptor has at most one reader and one writer callback; the registered
event mask follows them. ``forget`` must be called before a descriptor is closed.
"""

from __future__ import annotations

import asyncio
import select
import time
from collections.abc import Callable

TURN_BUDGET_S = 0.0005
BATCH = 64
_READ = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR
_WRITE = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR

Callback = Callable[[], None]


class Poller:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._epoll = select.epoll()
        self._readers: dict[int, Callback] = {}
        self._writers: dict[int, Callback] = {}
        self._masks: dict[int, int] = {}
        loop.add_reader(self._epoll.fileno(), self.pump)

    def set_reader(self, fd: int, callback: Callback) -> None:
        self._readers[fd] = callback
        self._update(fd)

    def clear_reader(self, fd: int) -> None:
        if self._readers.pop(fd, None) is not None:
            self._update(fd)

    def set_writer(self, fd: int, callback: Callback) -> None:
        self._writers[fd] = callback
        self._update(fd)

    def clear_writer(self, fd: int) -> None:
        if self._writers.pop(fd, None) is not None:
            self._update(fd)

    def forget(self, fd: int) -> None:
        """Drop ``fd`` entirely (call before closing it)."""
        self._readers.pop(fd, None)
        self._writers.pop(fd, None)
        self._update(fd)

    def _update(self, fd: int) -> None:
        mask = (select.EPOLLIN if fd in self._readers else 0) | (
            select.EPOLLOUT if fd in self._writers else 0
        )
        old = self._masks.get(fd, 0)
        if mask == old:
            return
        if not old:
            self._epoll.register(fd, mask)
        elif not mask:
            self._epoll.unregister(fd)
        else:
            self._epoll.modify(fd, mask)
        if mask:
            self._masks[fd] = mask
        else:
            del self._masks[fd]

    def pump(self) -> None:
        """Handle ready sockets for one bounded turn (checked after every socket)."""
        clock = time.perf_counter
        deadline = clock() + TURN_BUDGET_S
        poll, readers, writers = self._epoll.poll, self._readers, self._writers
        while True:
            events = poll(0, BATCH)
            for fd, mask in events:
                if mask & _READ:
                    reader = readers.get(fd)
                    if reader is not None:
                        reader()
                if mask & _WRITE:
                    writer = writers.get(fd)
                    if writer is not None:
                        writer()
                if clock() > deadline:
                    return  # the sockets not handled are still ready: next turn
            if len(events) < BATCH:
                return

    def close(self) -> None:
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._readers.clear()
        self._writers.clear()
        self._masks.clear()
