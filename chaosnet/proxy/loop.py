"""The event loop the proxy runs on: uvloop when it is installed, asyncio's otherwise."""

from __future__ import annotations

import asyncio
import functools


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


@functools.cache
def prepare_process() -> None:
    """Open now what the loop library keeps open for the life of the process.

    libuv (under uvloop) opens one pipe pair the first time any loop is created in a
    process and never closes it. A leak check that compares descriptors around a
    test would blame that test; calling this once at session start avoids it.
    """
    new_event_loop().close()
