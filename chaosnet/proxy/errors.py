"""The error every control-API failure is reported as: ``{"error": "...", "status": N}``.

Engine and request-parsing code raise :class:`ApiError` with the HTTP status and a
message that names the field or object at fault; ``api.py`` turns it into the JSON
body Toxiproxy clients expect.
"""

from __future__ import annotations

BAD_REQUEST = 400
NOT_FOUND = 404
CONFLICT = 409
TOO_LARGE = 413


class ApiError(Exception):
    """A request the control API refuses, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def to_json(self) -> dict[str, object]:
        return {"error": self.message, "status": self.status}


def bad_request(message: str) -> ApiError:
    return ApiError(BAD_REQUEST, message)


def proxy_not_found(name: str) -> ApiError:
    return ApiError(NOT_FOUND, f"proxy not found: {name}")


def toxic_not_found(name: str) -> ApiError:
    return ApiError(NOT_FOUND, f"toxic not found: {name}")
