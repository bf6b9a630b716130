"""The seeds of a run: a fresh one when none is given, and stable seeds derived from it.

Every consumer (a test, a proxy, a toxic, a retry policy) gets its own seed derived
from the run's seed and labels naming it, so one failing test or scenario replays on
its own whatever else ran. Derivation hashes with SHA-256, so it is the same in every
process and Python version (``PYTHONHASHSEED`` does not matter).
"""

from __future__ import annotations

import hashlib
import secrets

#: The one seed range: a run's seed (settings, ``chaosnet run --seed``), a toxic's
#: ``seed`` in scenario files and in the control API, and every derived seed.
MAX_SEED = 2**32 - 1


def fresh_seed() -> int:
    """A random seed for a run started without one (reported, so it can be replayed)."""
    return secrets.randbelow(MAX_SEED + 1)


def derive_seed(seed: int, *labels: object) -> int:
    """A stable seed in ``0..MAX_SEED`` for the consumer that ``labels`` name."""
    text = ":".join(str(part) for part in (seed, *labels))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
