"""A failing test's picture, from its proxies: the faults it put on them and their connections.

A test's client is the test's own code, so there are no request marks: the
picture has a row per proxy with the faults the test added and lifted through
:class:`~chaosnet.chaos.ProxyHandle` (toxics, disable/enable), each proxy's
connections from its connection log, and the failure as the one verdict,
marked when the test's body ended.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from chaosnet.chaos import ProxyChange
from chaosnet.control import ConnectionLogInfo
from chaosnet.picture.connections import connection_lines
from chaosnet.picture.faults import Change, Effect, bands
from chaosnet.picture.model import Picture, Verdict, proxy_row
from chaosnet.picture.sample import downsample

FAILURE_LINES = 30
NO_REQUESTS = (
    "a test's requests are its own code's, so none are drawn: the rows show the faults "
    "the test put on its proxies, the lines each connection through them"
)


@dataclass(frozen=True)
class ProxyTrace:
    """One proxy of a test: its name, what was done to it, and its connection log."""

    name: str
    history: Sequence[ProxyChange] = ()
    log: ConnectionLogInfo | None = None
    note: str = ""  # why there is no log (a backend without the extension)


def failing_test_picture(
    nodeid: str,
    proxies: Sequence[ProxyTrace],
    *,
    origin: float,
    end: float,
    seed: int,
    backend: str,
    replay: str,
    failure: str,
    when: str,
) -> Picture:
    """The picture of one failing test; times are Unix, ``origin`` is the body's start."""
    failure_lines = failure.strip().splitlines()
    shown = "\n".join(failure_lines[-FAILURE_LINES:])
    picture = Picture(
        title=nodeid,
        kind="test",
        status="failed",
        seed=seed,
        backend=backend,
        source=nodeid,
        replay=replay,
        end=round(end - origin, 6),
        rows=[proxy_row(p.name) for p in proxies],
        facts={"test": nodeid, "failed in": when, "backend": backend, "seed": str(seed)},
        notes=[NO_REQUESTS, *(f"proxy {p.name}: {p.note}" for p in proxies if p.note)],
    )
    changes = [c for p in proxies for c in _changes(p, origin)]
    picture.bands, picture.moments = bands(changes, picture.end)
    for proxy in proxies:
        if proxy.log is not None:
            picture.connections += connection_lines(proxy.name, proxy.log, origin)
    picture.verdicts = [
        Verdict("test", False, f"the test passes ({when})", shown, failed_at=picture.end)
    ]
    return downsample(picture)


def _changes(proxy: ProxyTrace, origin: float) -> Iterator[Change]:
    row = proxy_row(proxy.name)
    for change in proxy.history:
        at, done = change.started - origin, change.done - origin
        if change.action == "add_toxic":
            key, label = f"toxic {change.toxic}", f"{change.detail.split(' ')[0]} {change.toxic}"
            yield Change(at, done, row, key, "open", "toxic", label, change.detail)
        elif change.action == "remove_toxic":
            yield Change(at, done, row, f"toxic {change.toxic}", "close", "toxic", "")
        elif change.action == "update_toxic":
            key = f"toxic {change.toxic}"
            yield Change(at, done, row, key, "update", "update", "updated", change.detail)
        else:
            effect: Effect = "open" if change.action == "disable" else "close"
            yield Change(at, done, row, "disabled", effect, "disabled", "disabled")
