"""Deterministic random sources for toxics; the global ``random`` is never used.

Every draw comes from a ``random.Random`` seeded with a string naming exactly what
it is for: the seed, the proxy, the toxic, the connection's index counted from the
toxic's creation, and the purpose. ``random.Random(str)`` hashes the string with
SHA-512, so the sequence is the same in every process and Python run
(``PYTHONHASHSEED`` does not matter). Same seed + same order of connections =
same toxicity draws, jitter, slice sizes and corrupted positions.
"""

from __future__ import annotations

import random


def derive(seed: int, *labels: object) -> random.Random:
    return random.Random("|".join([str(seed), *map(str, labels)]))


def uniform(seed: int, *labels: object) -> float:
    """One draw in [0, 1) for ``labels``; the same labels give the same value."""
    return derive(seed, *labels).random()
