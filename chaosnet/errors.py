"""The base of every error chaosnet reports to a *user* of the harness.

Its message names the problem and where it is; the CLI and the pytest plugin
print it as-is, without a traceback. Errors that client code sees on the wire
(refusals, resets, truncated frames) are not here: they are the standard
``OSError`` family and ``chaosnet.framing``'s errors.
"""

from __future__ import annotations


class ChaosnetError(Exception):
    """A problem with the harness's input or environment, explained to the user."""
