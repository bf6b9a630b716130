"""Arm PR_SET_PDEATHSIG, then exec the server: ``pdeathsig_exec.py PARENT_PID PROGRAM [ARG...]``.

Run by path with ``python -I -S`` (standard library only, ~10 ms) between the
fork and the real server, instead of a ``preexec_fn``: a ``preexec_fn`` runs
Python code between fork and exec, which can deadlock when the parent has other
threads, and it disables subprocess's fast vfork path. The death signal
survives ``execve``, so the server is SIGKILLed when the thread that spawned it
dies, even when the test process is SIGKILLed and runs no cleanup.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
EXIT_CANNOT_EXEC = 127


def main() -> None:
    parent_pid = int(sys.argv[1])
    argv = sys.argv[2:]
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to arm
        pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"chaosnet: cannot run {argv[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(EXIT_CANNOT_EXEC)


if __name__ == "__main__":
    main()
