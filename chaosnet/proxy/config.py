"""``--config``: a Toxiproxy-style JSON array of proxies created at start.

Same format as ``toxiproxy-server -config``::

    [{"name": "redis", "listen": "127.0.0.1:26379", "upstream": "127.0.0.1:6379"}]

``enabled`` is optional (default true). Toxiproxy logs a bad file and starts
anyway; chaosnet refuses to start, naming the file and the problem.
"""

from __future__ import annotations

from pathlib import Path

from chaosnet.errors import ChaosnetError
from chaosnet.proxy import bodies
from chaosnet.proxy.engine import ProxyConfig
from chaosnet.proxy.errors import ApiError

MAX_CONFIG_BYTES = 16 << 20


def load_config(path: Path) -> list[ProxyConfig]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ChaosnetError(f"cannot read config {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ChaosnetError(f"config {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        configs = bodies.populate_configs(bodies.parse_json(raw))
        for config in configs:  # a file is checked whole before anything starts
            bodies.check_addresses(config)
        return configs
    except ApiError as exc:
        raise ChaosnetError(f"bad config {path}: {exc}") from None
