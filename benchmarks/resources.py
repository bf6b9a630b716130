"""CPU time and memory of the processes in a measurement.

CPU seconds per unit of work (per GB, per round trip) say how efficient a proxy
is independently of how busy the shared machine was; the load generator's own
CPU share says whether *it* was the bottleneck (near 100% of a core: suspect).
Peak RSS is the kernel's high-water mark (``VmHWM``), reset before a figure by
writing ``5`` to ``/proc/PID/clear_refs`` (Linux >= 4.0), so each figure gets
its own peak rather than the process's lifetime peak.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass
class Usage:
    wall_s: float = 0.0
    client_cpu_s: float = 0.0  # this process (the load generator)
    server_cpu_s: float | None = None  # the proxy process, when there is one

    @property
    def client_share(self) -> float:
        """The load generator's CPU use as a fraction of one core."""
        return self.client_cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def _cpu(process: psutil.Process | None) -> float | None:
    if process is None:
        return None
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def _own_cpu() -> float:
    return time.process_time()  # nanosecond-grained, unlike the tick-grained os.times()


@contextmanager
def measured(server_pid: int | None) -> Iterator[Usage]:
    """Fills the yielded :class:`Usage` when the block ends."""
    process = psutil.Process(server_pid) if server_pid is not None else None
    usage = Usage()
    server_before, own_before, started = _cpu(process), _own_cpu(), time.perf_counter()
    try:
        yield usage
    finally:
        usage.wall_s = time.perf_counter() - started
        usage.client_cpu_s = _own_cpu() - own_before
        server_after = _cpu(process)
        if server_before is not None and server_after is not None:
            usage.server_cpu_s = server_after - server_before


def reset_peak_rss(pid: int) -> bool:
    """Restart the kernel's RSS high-water mark of ``pid``; False where unsupported."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_bytes(pid: int) -> int | None:
    """``VmHWM`` of ``pid`` in bytes (None when /proc cannot tell)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def rss_bytes(pid: int) -> int | None:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None
