"""``--profile DIR``: sample the chaosnet server with py-spy while chosen figures run.

py-spy attaches to the ``chaosnet serve`` process from outside (``--nonblocking``:
it never pauses the proxy) during the first chaosnet repetition of each profiled
figure and writes collapsed stacks to ``DIR/<figure>-chaosnet.txt``. The summary
(the functions where the busy samples are, by own and by inclusive time) goes into
the JSON. py-spy is a profiling tool only, not a dependency: without it the run
goes on and says so.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.environment import CHAOSNET

PROFILED = ("1a", "1b", "2a", "2c", "3", "4", "6e", "8")
RATE_HZ = 997
ATTACH_S = 0.5  # py-spy needs a moment to attach before the figure starts
STOP_TIMEOUT_S = 30.0
TOP = 15


def find_py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.is_file() else shutil.which("py-spy")


class Profiler:
    def __init__(self, directory: Path, native: bool = False) -> None:
        self.directory = directory
        self.native = native
        self.binary = find_py_spy()
        self.summaries: dict[str, dict[str, Any]] = {}
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def available(self) -> bool:
        return self.binary is not None

    @contextmanager
    def record(self, key: str, path: str, pid: int | None) -> Iterator[None]:
        if (
            self.binary is None
            or path != CHAOSNET
            or pid is None
            or key not in PROFILED
            or key in self.summaries
        ):
            yield
            return
        output = self.directory / f"{key}-chaosnet.txt"
        argv = [self.binary, "record", "--pid", str(pid), "--rate", str(RATE_HZ)]
        argv += ["--format", "raw", "--output", str(output)]
        # native frames need py-spy to pause the process for each sample (perturbing it)
        argv.append("--native" if self.native else "--nonblocking")
        started = time.perf_counter()  # py-spy samples from here: busy share counts it all
        sampler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(ATTACH_S)
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            sampler.send_signal(signal.SIGINT)
            try:
                _, err = sampler.communicate(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                sampler.kill()
                _, err = sampler.communicate()
            self.summaries[key] = summarize(output, seconds) | {
                "file": str(output),
                "py_spy_stderr": err.decode(errors="replace")[-400:],
            }


def summarize(collapsed: Path, seconds: float) -> dict[str, Any]:
    """Busy share, and the top functions by own and inclusive samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if collapsed.is_file():
        for line in collapsed.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
            if not frames:
                continue
            total += count
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    expected = seconds * RATE_HZ
    return {
        "samples": total,
        "busy_share": total / expected if expected else None,
        "own": [(frame, count / total) for frame, count in own.most_common(TOP)] if total else [],
        "inclusive": (
            [(frame, count / total) for frame, count in inclusive.most_common(TOP)] if total else []
        ),
    }
