"""The chaosnet image against Toxiproxy's: size, and start time as the ``docker`` backend sees it.

Start time is ``DockerBackend(image).start()``: create and start the container
(host networking), then wait until its API listens and ``GET /version``
answers; the median and the range of ``repeats`` starts, interleaved (one of
each in turn, so load on the machine affects both alike). Size is the image's
uncompressed size as the engine reports it.

Run: ``python -m benchmarks.bench_images [--quick] [--chaosnet IMAGE] [--toxiproxy IMAGE]``
(defaults: the images the test-suite builds, ``chaosnet-test/chaosnet:latest`` and
``chaosnet-test/toxiproxy:2.12.0``; run ``pytest tests/docker`` once to build them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from chaosnet.backends.docker import DockerBackend
from chaosnet.servers.docker_engine import docker_client

DEFAULT_IMAGES = {
    "chaosnet": "chaosnet-test/chaosnet:latest",
    "toxiproxy": "chaosnet-test/toxiproxy:2.12.0",
}


def start_seconds(image: str) -> float:
    backend = DockerBackend(image)
    started = time.perf_counter()
    backend.start()
    elapsed = time.perf_counter() - started
    backend.stop()
    return elapsed


def measure(images: dict[str, str], repeats: int) -> dict[str, dict[str, float]]:
    starts: dict[str, list[float]] = {name: [] for name in images}
    for _ in range(repeats):
        for name, image in images.items():
            starts[name].append(start_seconds(image))
    with docker_client() as client:
        sizes = {name: client.images.get(image).attrs["Size"] for name, image in images.items()}
    return {
        name: {
            "size_mb": sizes[name] / 1e6,
            "start_median_s": statistics.median(starts[name]),
            "start_min_s": min(starts[name]),
            "start_max_s": max(starts[name]),
        }
        for name in images
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 starts each instead of 7")
    for name, image in DEFAULT_IMAGES.items():
        parser.add_argument(f"--{name}", default=image, help=f"{name} image (default {image})")
    args = parser.parse_args()
    images = {name: getattr(args, name) for name in DEFAULT_IMAGES}
    figures = measure(images, 2 if args.quick else 7)
    for name, row in figures.items():
        print(
            f"{name:10} {images[name]:34} {row['size_mb']:7.1f} MB   start "
            f"{row['start_median_s']:.2f} s (range {row['start_min_s']:.2f}-"
            f"{row['start_max_s']:.2f})"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
