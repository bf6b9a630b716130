"""chaosnet's settings and where each comes from: ini < environment < command line < marker.

The pytest plugin and the scenario runner both resolve their options here, so
the two read the same names and validate them the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chaosnet.errors import ChaosnetError
from chaosnet.seeds import MAX_SEED, fresh_seed

BACKENDS = ("embedded", "toxiproxy", "docker")
#: What ``@pytest.mark.chaosnet(...)`` may set, the last word in the precedence.
MARKER_ARGUMENTS = ("seed", "leak_check", "unsupported", "requires", "hang_timeout")
#: Marker arguments that are not settings: what the test needs of the backend.
REQUIREMENTS = ("requires",)
#: What a test or scenario needing an extension the backend lacks becomes.
UNSUPPORTED = ("fail", "skip")
DEFAULT_DOCKER_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"
DEFAULT_HANG_TIMEOUT_S = 60.0
DEFAULT_HAMMER_RATE = 200.0


@dataclass(frozen=True)
class Option:
    """One setting: its attribute, ini key, environment variable and CLI flag."""

    attr: str
    ini: str
    env: str
    flag: str
    help: str
    nargs: int | None = None  # values the command-line flag takes (default one)
    metavar: tuple[str, ...] | None = None


OPTIONS = (
    Option(
        "backend",
        "chaosnet_backend",
        "CHAOSNET_BACKEND",
        "--chaosnet-backend",
        "control server: embedded (default), toxiproxy, docker, or http://host:port",
    ),
    Option(
        "seed",
        "chaosnet_seed",
        "CHAOSNET_SEED",
        "--chaosnet-seed",
        "seed for reproducible faults (default: random, printed in the report header)",
    ),
    Option(
        "leak_check",
        "chaosnet_leak_check",
        "CHAOSNET_LEAK_CHECK",
        "--chaosnet-leak-check",
        "on|off: fail tests that leak sockets, threads, processes or tasks (default on)",
    ),
    Option(
        "toxiproxy_bin",
        "chaosnet_toxiproxy_bin",
        "CHAOSNET_TOXIPROXY_BIN",
        "--chaosnet-toxiproxy-bin",
        "path of toxiproxy-server for the toxiproxy backend (default: from PATH)",
    ),
    Option(
        "docker_image",
        "chaosnet_docker_image",
        "CHAOSNET_DOCKER_IMAGE",
        "--chaosnet-docker-image",
        f"Toxiproxy image for the docker backend (default {DEFAULT_DOCKER_IMAGE})",
    ),
    Option(
        "unsupported",
        "chaosnet_unsupported",
        "CHAOSNET_UNSUPPORTED",
        "--chaosnet-unsupported",
        "fail|skip: a test needing an extension the backend lacks fails (default) or is skipped",
    ),
    Option(
        "report",
        "chaosnet_report",
        "CHAOSNET_REPORT",
        "--chaosnet-report",
        "html DIR (or png DIR): each failing test that uses chaosnet fixtures writes a "
        "picture of its proxies' faults and connections there (needs chaosnet[report])",
        nargs=2,
        metavar=("FORMAT", "DIR"),
    ),
    Option(
        "hang_timeout",
        "chaosnet_hang_timeout",
        "CHAOSNET_HANG_TIMEOUT",
        "--chaosnet-hang-timeout",
        "seconds a test using chaosnet fixtures may run before it is failed as hung, with "
        f"its stack (default {DEFAULT_HANG_TIMEOUT_S:g}; 0: off)",
    ),
    Option(
        "hammer_rate",
        "chaosnet_hammer_rate",
        "CHAOSNET_HAMMER_RATE",
        "--chaosnet-hammer-rate",
        "warn when a test opens more connections per second than this through one proxy "
        f"(default {DEFAULT_HAMMER_RATE:g}; 0: off)",
    ),
)
REPORT_FORMATS = ("html", "png")


@dataclass(frozen=True)
class Settings:
    backend: str = "embedded"
    seed: int | None = None
    leak_check: bool = True
    toxiproxy_bin: Path | None = None
    docker_image: str = DEFAULT_DOCKER_IMAGE
    unsupported: str = "fail"
    report: tuple[str, Path] | None = None  # (format, folder) of failing tests' pictures
    hang_timeout: float = DEFAULT_HANG_TIMEOUT_S
    hammer_rate: float = DEFAULT_HAMMER_RATE

    def with_seed(self) -> Settings:
        """A copy with a concrete seed: the given one, or a fresh random one."""
        if self.seed is not None:
            return self
        return replace(self, seed=fresh_seed())

    def override(self, source: str, **values: Any) -> Settings:
        """A copy with ``values`` (raw strings or typed) parsed and applied."""
        parsed = {name: _parse(name, value, source) for name, value in values.items()}
        return replace(self, **parsed)


def resolve(
    ini: Callable[[str], Any],
    env: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
) -> Settings:
    """Layer the sources; ``ini(key)`` returns the ini value or a falsy value when unset."""
    environ = os.environ if env is None else env
    settings = Settings()
    for option in OPTIONS:
        layers = (
            (f"ini {option.ini}", ini(option.ini)),
            (f"environment {option.env}", environ.get(option.env)),
            (f"option {option.flag}", (cli or {}).get(option.attr)),
        )
        for source, value in layers:
            if value not in (None, ""):
                settings = settings.override(source, **{option.attr: value})
    return settings


def resolve_session_settings(
    ini: Callable[[str], Any],
    cli: Mapping[str, Any],
    workerinput: Mapping[str, Any] | None,
) -> Settings:
    """A pytest session's settings: ini < env < CLI, with a concrete seed; an xdist worker
    takes the controller's seed so all workers agree."""
    settings = resolve(ini, os.environ, cli)
    if workerinput is not None and workerinput.get("chaosnet_seed") is not None:
        settings = settings.override("xdist controller", seed=workerinput["chaosnet_seed"])
    return settings.with_seed()


def marker_settings(session: Settings, marker_kwargs: Mapping[str, Any]) -> Settings:
    """Apply ``@pytest.mark.chaosnet(...)``, the last word in the precedence."""
    unknown = sorted(set(marker_kwargs) - set(MARKER_ARGUMENTS))
    if unknown:
        raise ChaosnetError(
            f"unknown @pytest.mark.chaosnet argument(s) {', '.join(unknown)}; "
            f"expected {', '.join(MARKER_ARGUMENTS)}"
        )
    given = {k: v for k, v in marker_kwargs.items() if v is not None and k not in REQUIREMENTS}
    return session.override("marker @pytest.mark.chaosnet", **given)


def marker_requires(marker_kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """``requires=["truncate_frame", ...]``: the extensions the test needs."""
    features = marker_kwargs.get("requires") or ()
    if isinstance(features, str) or not all(isinstance(f, str) for f in features):
        raise ChaosnetError(
            f"@pytest.mark.chaosnet(requires=...) must be a list of feature names, got {features!r}"
        )
    return tuple(features)


def _parse(name: str, value: Any, source: str) -> Any:
    parser = _PARSERS.get(name)
    if parser is None:
        raise ChaosnetError(f"{source}: unknown chaosnet setting {name!r}")
    try:
        return parser(value)
    except ValueError as exc:
        raise ChaosnetError(f"{source}: {exc}") from None


def _parse_backend(value: Any) -> str:
    text = str(value).strip()
    if text in BACKENDS or text.startswith("http://"):
        return text
    raise ValueError(
        f"backend must be one of {', '.join(BACKENDS)} or http://host:port, got {text!r}"
    )


def _parse_seed(value: Any) -> int:
    try:
        seed = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"seed must be an integer, got {value!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    return seed


def _parse_switch(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise ValueError(f"leak check must be on or off, got {value!r}")


def _parse_unsupported(value: Any) -> str:
    text = str(value).strip()
    if text not in UNSUPPORTED:
        raise ValueError(f"unsupported must be {' or '.join(UNSUPPORTED)}, got {value!r}")
    return text


def _parse_non_negative(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of seconds or per second, got {value!r}") from None
    if not 0 <= number < float("inf"):
        raise ValueError(f"must be 0 (off) or more, got {value!r}")
    return number


def _parse_path(value: Any) -> Path:
    return Path(str(value)).expanduser()


def _parse_report(value: Any) -> tuple[str, Path]:
    """``("html", "DIR")`` from the command line, ``"html DIR"`` from ini or environment."""
    parts = value.split(None, 1) if isinstance(value, str) else [str(v) for v in value]
    if len(parts) != 2 or parts[0] not in REPORT_FORMATS:
        raise ValueError(
            f"report must be FORMAT DIR with FORMAT one of {', '.join(REPORT_FORMATS)}, "
            f"got {value!r}"
        )
    return parts[0], _parse_path(parts[1].strip())


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "backend": _parse_backend,
    "seed": _parse_seed,
    "leak_check": _parse_switch,
    "toxiproxy_bin": _parse_path,
    "docker_image": str,
    "unsupported": _parse_unsupported,
    "report": _parse_report,
    "hang_timeout": _parse_non_negative,
    "hammer_rate": _parse_non_negative,
}
