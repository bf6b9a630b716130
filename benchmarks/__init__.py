"""chaosnet's benchmarks: each module has ``measure(quick) -> dict[str, float]``."""
