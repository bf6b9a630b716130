"""A proxy's connection log as lines on the time axis, each with how it ended."""

from __future__ import annotations

from chaosnet.control import ConnectionInfo, ConnectionLogInfo
from chaosnet.picture.model import ConnectionLine, Ending


def ending(record: ConnectionInfo) -> Ending:
    """FIN or RST from either side, by a toxic, by the proxy, or still open."""
    if record.closed_at is None:
        return "still open"
    by = record.closed_by or ""
    if by.startswith("toxic"):
        return "by a toxic"
    if by == "proxy":
        return "by the proxy"
    return "RST" if record.close_kind == "rst" else "FIN"


def _closed_by(record: ConnectionInfo) -> str:
    if record.closed_by is None:
        return "nobody yet"
    how = f"{record.closed_by} ({(record.close_kind or '?').upper()})"
    if record.error:
        how += f": {record.error}"
    return how if record.closed_at is not None else f"half-closed by {how}"


def connection_lines(proxy: str, log: ConnectionLogInfo, origin: float) -> list[ConnectionLine]:
    """The log's records, their Unix times made relative to ``origin``."""
    return [
        ConnectionLine(
            proxy=proxy,
            id=record.id,
            opened=round(record.opened_at - origin, 6),
            closed=None if record.closed_at is None else round(record.closed_at - origin, 6),
            ending=ending(record),
            closed_by=_closed_by(record),
            client=record.client,
            bytes_up=record.bytes_upstream,
            bytes_down=record.bytes_downstream,
            toxics=", ".join(record.toxics),
        )
        for record in log.records
    ]
