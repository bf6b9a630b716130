"""``Closing`` and ``AsyncClosing``: ``with`` blocks that end in ``close()``.

Every client and controller that holds a resource is used as ``with X(...) as x:``
(or ``async with``): the block gets the object itself, and leaving it calls
``x.close()`` however it ends, letting any exception pass through. These two mixins
write that once; a class declares only its ``close()``.

Standard library only, so the primitives (``connection``, ``datagram``) use it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

__all__ = ["AsyncClosing", "Closing"]


class Closing(ABC):
    """``with obj:`` gives ``obj`` and ends in ``obj.close()``; exceptions pass through."""

    @abstractmethod
    def close(self) -> None:
        """Release what the object holds; called again, it does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncClosing(ABC):
    """``async with obj:`` gives ``obj`` and ends in ``await obj.close()``; exceptions
    pass through."""

    @abstractmethod
    async def close(self) -> None:
        """Release what the object holds; called again, it does nothing."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
