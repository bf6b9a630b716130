"""Framing speed: the sans-IO decoder and scanner, fed pre-cut chunks in memory.

Figures (MB = 10**6 bytes; best of a few repetitions, each bounded in count and time):

- ``decode_64B_*``: 64-byte payloads fed in 64 KiB chunks (frames/s, MB/s of stream);
- ``decode_1MiB_*``: 1 MiB payloads fed in 64 KiB chunks;
- ``decode_{1,4}MiB_at_1500B_ms``: one frame fed 1,500 bytes at a time (an Ethernet
  MTU's worth), and ``decode_1500B_scaling``: the 4 MiB time over the 1 MiB time,
  which is ~4 when the work is linear (a quadratic buffer would give ~16);
- ``scan_*``: the proxy's FrameScanner on the same streams;
- ``encode_64B_frames_per_s``.

Run: ``python -m benchmarks.bench_framing [--quick]``.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.report import micro_main
from benchmarks.stats import fastest
from chaosnet.framing import FrameDecoder, FrameScanner, encode_frame

KIB = 1024
MIB = 1024 * KIB


def _chunks(payload_size: int, stream_bytes: int, chunk: int) -> tuple[list[bytes], int]:
    frame = encode_frame(b"\xa5" * payload_size)
    count = max(1, stream_bytes // len(frame))
    stream = frame * count
    return [stream[i : i + chunk] for i in range(0, len(stream), chunk)], count


def _decode(chunks: list[bytes], expected: int) -> Callable[[], None]:
    def run() -> None:
        feed = FrameDecoder().feed
        frames = 0
        for chunk in chunks:
            frames += len(feed(chunk))
        if frames != expected:
            raise RuntimeError(f"decoded {frames} frames, expected {expected}")

    return run


def _scan(chunks: list[bytes], expected: int) -> Callable[[], None]:
    def run() -> None:
        scanner = FrameScanner()
        for chunk in chunks:
            scanner.scan(chunk)
        if scanner.frame != expected or not scanner.at_boundary:
            raise RuntimeError(f"scanned {scanner.frame} frames, expected {expected}")

    return run


def _throughput(
    name: str,
    make: Callable[[list[bytes], int], Callable[[], None]],
    payload: int,
    total: int,
    repeats: int,
) -> dict[str, float]:
    chunks, count = _chunks(payload, total, 64 * KIB)
    seconds = fastest(make(chunks, count), repeats)
    stream = sum(len(c) for c in chunks)
    return {f"{name}_frames_per_s": count / seconds, f"{name}_MB_per_s": stream / seconds / 1e6}


def _small_chunks_ms(payload: int, repeats: int) -> float:
    chunks, count = _chunks(payload, payload + 4, 1500)
    return fastest(_decode(chunks, count), repeats) * 1000


def measure(quick: bool = False) -> dict[str, float]:
    """Every framing figure, by name."""
    repeats = 2 if quick else 5
    small_total = 8 * MIB if quick else 64 * MIB
    large_total = 64 * MIB if quick else 256 * MIB
    figures: dict[str, float] = {}
    figures |= _throughput("decode_64B", _decode, 64, small_total, repeats)
    figures |= _throughput("decode_1MiB", _decode, MIB, large_total, repeats)
    one = _small_chunks_ms(MIB, repeats * 2)
    four = _small_chunks_ms(4 * MIB, repeats * 2)
    figures |= {
        "decode_1MiB_at_1500B_ms": one,
        "decode_4MiB_at_1500B_ms": four,
        "decode_1500B_scaling": four / one,
    }
    figures |= _throughput("scan_64B", _scan, 64, small_total, repeats)
    figures |= _throughput("scan_1MiB", _scan, MIB, large_total, repeats)
    payload = b"\xa5" * 64
    count = 100_000 if quick else 1_000_000

    def encode() -> None:
        for _ in range(count):
            encode_frame(payload)

    figures["encode_64B_frames_per_s"] = count / fastest(encode, repeats)
    return figures


def main() -> None:
    micro_main(measure, __doc__ or "", quick_help="smaller streams, fewer repeats")


if __name__ == "__main__":
    main()
