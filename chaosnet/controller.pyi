"""Renamed ``chaosnet.chaos`` in 0.2; this name is kept for one release (type stub)."""

from chaosnet.chaos import *  # noqa: F403
from chaosnet.chaos import Proxy as Proxy
