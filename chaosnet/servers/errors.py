"""What can go wrong with a real server process, told to the user with its log."""

from __future__ import annotations

from chaosnet.errors import ChaosnetError


class ServerError(ChaosnetError):
    """A server process failed to start, stop or stay up.

    The message names the server, its command and what happened, and ends with
    the last lines of its log.
    """

    def __init__(self, message: str, *, name: str, log_tail: str = "") -> None:
        self.name = name
        self.log_tail = log_tail
        super().__init__(_with_log(message, log_tail))


class ServerExitedEarly(ServerError):
    """The process exited before it became ready."""

    def __init__(self, message: str, *, name: str, returncode: int, log_tail: str = "") -> None:
        self.returncode = returncode
        super().__init__(message, name=name, log_tail=log_tail)


class ServerNotReady(ServerError):
    """The process kept running but did not pass its readiness check in time."""

    def __init__(self, message: str, *, name: str, timeout: float, log_tail: str = "") -> None:
        self.timeout = timeout
        super().__init__(message, name=name, log_tail=log_tail)


class ServerCrashed(ServerError):
    """The process died while it should have been running (nobody asked it to stop)."""

    def __init__(self, message: str, *, name: str, returncode: int, log_tail: str = "") -> None:
        self.returncode = returncode
        super().__init__(message, name=name, log_tail=log_tail)


def _with_log(message: str, log_tail: str) -> str:
    if not log_tail.strip():
        return f"{message}\n(its log is empty)"
    indented = "\n".join(f"  | {line}" for line in log_tail.splitlines())
    return f"{message}\nlast lines of its log:\n{indented}"
