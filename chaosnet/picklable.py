"""``Picklable``: an exception that pickles as a call of its class on the fields it keeps.

Python pickles an exception as ``type(exc)(*exc.args)``. The errors whose constructor
builds the message from fields (``FrameTooLarge(length, limit)``) pass only that message
on as ``args``, so the copy could not be built: a worker process (pytest-xdist,
multiprocessing) would report a ``TypeError`` instead of the error. Such a class names
its constructor's parameters, kept as attributes of the same names, in ``_init_fields``.

Standard library only, so the primitives (``retry``, ``framing``, ``datagram``) use it.
"""

from __future__ import annotations

from typing import ClassVar, Self

__all__ = ["Picklable"]


class Picklable:
    """Mixin, first among the bases: pickled as ``type(self)(*fields)``, the attributes
    named in ``_init_fields`` in the constructor's order."""

    _init_fields: ClassVar[tuple[str, ...]] = ()

    def __reduce__(self) -> tuple[type[Self], tuple[object, ...]]:
        return (type(self), tuple(getattr(self, name) for name in self._init_fields))
