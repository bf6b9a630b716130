"""The error every control-API failure is reported as: ``{"error": "...", "status": N}``.

Engine and request-parsing code raise :class:`ApiError` with the HTTP status and a
message that names the field or object at fault; ``api.py`` turns it into the JSON
body Toxiproxy clients expect. Where Toxiproxy has a fixed message (``proxy not
found``, ``toxic already exists``, ...) ``error`` is exactly that text, because
clients compare it; what chaosnet knows beyond it (which proxy, which toxic) goes
into an additional ``detail`` field.
"""

from __future__ import annotations

BAD_REQUEST = 400
NOT_FOUND = 404
CONFLICT = 409
TOO_LARGE = 413


class ApiError(Exception):
    """A request the control API refuses, with its HTTP status."""

    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(message if detail is None else f"{message}: {detail}")
        self.status = status
        self.message = message
        self.detail = detail

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.message, "status": self.status}
        if self.detail is not None:
            body["detail"] = self.detail
        return body


def bad_request(message: str) -> ApiError:
    return ApiError(BAD_REQUEST, message)


def proxy_not_found(name: str) -> ApiError:
    return ApiError(NOT_FOUND, "proxy not found", f"no proxy named {name!r}")


def proxy_exists(name: str) -> ApiError:
    return ApiError(CONFLICT, "proxy already exists", f"a proxy named {name!r} exists")


def toxic_not_found(name: str) -> ApiError:
    return ApiError(NOT_FOUND, "toxic not found", f"no toxic named {name!r}")


def toxic_exists(name: str) -> ApiError:
    return ApiError(CONFLICT, "toxic already exists", f"a toxic named {name!r} exists")
