"""How many bytes the whole engine may hold, and which directions must stop reading.

Every direction counts its ``in_flight`` bytes (read from its source, not yet
written to its destination or dropped): a toxic's queue, a writer's backlog.

- **Per direction**, with toxics: stop reading above ``HIGH_WATER`` (512 KiB),
  read again at ``LOW_WATER`` (128 KiB). This bounds one connection.
- **Engine-wide**: while the engine holds more than ``limit``, a direction with
  toxics does not read while it holds more than its fair share -- ``limit``
  divided among the directions holding anything, less one read -- and resumes
  at a quarter of it. The directions feeding the most held data stop first; one
  holding little goes on (a request through a latency toxic is not stalled
  because 500 other connections stream), and one holding nothing may always
  read, so every direction makes progress. Held data always drains (toxics
  release or drop it, writers write it), so a pause always ends. The check is
  made before each read as well as after it, so once the limit is reached the
  total stays about there instead of growing by one read per direction.
- **Without toxics** a direction holds only what its destination did not take of
  its last read, and reads again once that is written; the read size adapts
  between 64 KiB and 1 MiB. While the engine is over its limit such reads are
  64 KiB, so 500 streaming connections cannot each leave a megabyte unsent.
  (A ceiling of ``limit`` divided among the open directions at all times was
  measured too: it halved the throughput of 500 flat-out streams, 2.0 -> 1.0 GB/s.)

Below the limit nothing changes: the per-direction marks alone apply.
"""

from __future__ import annotations

HIGH_WATER = 512 << 10  # per direction with toxics: stop reading above this
LOW_WATER = 128 << 10  # ... and read again at or below this
READ_SIZE = 64 << 10  # one read on a direction with toxics
MIN_READ = 64 << 10  # the read size without toxics adapts between these two
MAX_READ = 1 << 20
DEFAULT_LIMIT = 64 << 20


class BufferBudget:
    __slots__ = ("held", "holders", "limit", "peak", "pressure_pauses")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"buffer limit must be at least 1 byte, got {limit}")
        self.limit = limit
        self.held = 0  # bytes held by every direction of the engine
        self.holders = 0  # directions holding at least one byte
        self.peak = 0  # the most ``held`` has been
        self.pressure_pauses = 0  # reads refused because of this budget (not HIGH_WATER)

    def over_limit(self) -> bool:
        return self.held > self.limit

    def share(self) -> int:
        """What one holder may hold before reading while the engine is over its limit."""
        return max(0, self.limit // max(1, self.holders) - READ_SIZE)

    def take(self, before: int, count: int) -> None:
        """A direction holding ``before`` bytes holds ``count`` more."""
        if before <= 0 < count:
            self.holders += 1
        held = self.held + count
        self.held = held
        if held > self.peak:
            self.peak = held

    def give_back(self, before: int, count: int) -> None:
        """A direction holding ``before`` bytes released ``count`` of them."""
        self.held -= count
        if before > 0 >= before - count:
            self.holders -= 1

    def must_pause(self, in_flight: int) -> bool:
        """Whether a direction with toxics holding ``in_flight`` bytes stops reading."""
        if in_flight > HIGH_WATER:
            return True
        if self.held > self.limit and in_flight > self.share():
            self.pressure_pauses += 1
            return True
        return False

    def may_resume(self, in_flight: int) -> bool:
        """Whether a paused direction with toxics holding ``in_flight`` bytes reads again."""
        if self.held > self.limit:
            return in_flight <= min(LOW_WATER, self.share() // 4)
        return in_flight <= LOW_WATER
