"""chaosnet's benchmarks: ``python -m benchmarks [--quick]`` runs the suite (docs/performance.md).

``bench_framing`` and ``bench_retry`` each have ``measure(quick) -> dict[str, float]``
and also run on their own (``python -m benchmarks.bench_framing``).
"""
