"""How long a fuzzer runs, and where it reports how many inputs it tried.

CI runs each fuzzer for ``CI_SECONDS``; ``CHAOSNET_FUZZ_SECONDS`` sets a longer run
(``CHAOSNET_FUZZ_SECONDS=300 pytest tests/hardening -k fuzz``). Each fuzzer counts
the inputs it sent and prints the count (visible with ``-s`` or in ``-rA``); with
``CHAOSNET_FUZZ_STATS=FILE`` it also appends ``name count seconds`` to FILE.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

CI_SECONDS = 20.0


def seconds() -> float:
    text = os.environ.get("CHAOSNET_FUZZ_SECONDS", "")
    return float(text) if text else CI_SECONDS


def timeout() -> float:
    """A pytest-timeout for a fuzz test: its budget plus room to finish the last input."""
    return seconds() * 2 + 60


@dataclass
class Budget:
    name: str
    limit: float = field(default_factory=seconds)
    started: float = field(default_factory=time.monotonic)
    inputs: int = 0

    @property
    def spent(self) -> bool:
        return time.monotonic() - self.started >= self.limit

    def count(self, inputs: int = 1) -> None:
        self.inputs += inputs

    def report(self) -> str:
        elapsed = time.monotonic() - self.started
        line = f"{self.name} {self.inputs} {elapsed:.1f}"
        path = os.environ.get("CHAOSNET_FUZZ_STATS")
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(line + "\n")
        print(f"\n{self.name}: {self.inputs} inputs in {elapsed:.1f} s")
        return line
