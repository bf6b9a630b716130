"""What the figures were measured on: they mean nothing without it."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

import chaosnet
from benchmarks.environment import toxiproxy_version


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe(toxiproxy_bin: Path | None) -> dict[str, Any]:
    uvloop = _version("uvloop")
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu": _cpu_model(),
        "memory_GB": round(psutil.virtual_memory().total / 1e9, 1),
        "load_average": os.getloadavg(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "chaosnet": chaosnet.__version__,
        "uvloop": uvloop,
        "uvloop_on": uvloop is not None,  # chaosnet serve and the clients use it when installed
        "toxiproxy": toxiproxy_version(toxiproxy_bin) if toxiproxy_bin else None,
        "toxiproxy_binary": str(toxiproxy_bin) if toxiproxy_bin else None,
    }


def summary(machine: dict[str, Any]) -> str:
    return (
        f"{machine['date']} · {machine['cores']} cores ({machine['cpu']}) · "
        f"Python {machine['python']} · uvloop {'on' if machine['uvloop_on'] else 'off'} · "
        f"Toxiproxy {machine['toxiproxy'] or 'absent'} · load {machine['load_average'][0]:.2f}"
    )
