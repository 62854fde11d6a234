"""Start a process with every signal at its default disposition, as a container runtime starts a container.

A process inherits ignored signals: under `nohup` SIGHUP is ignored, and a pytest-xdist worker may run with
SIGINT ignored. POSIX sh cannot trap a signal that was ignored when it started ("Signals that were ignored on
entry to a non-interactive shell cannot be trapped or reset", XCU 2.14 trap), so a script's `trap ... INT`
or `trap ... HUP` would silently do nothing. runc resets every signal to SIG_DFL before it execs the container's
process (opencontainers/runc, libcontainer/init_linux.go), so the tests do the same.
"""

from __future__ import annotations

import contextlib
import signal


def reset_signals() -> None:
    """A subprocess.Popen preexec_fn: every catchable signal back to SIG_DFL, none blocked."""
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with contextlib.suppress(OSError, ValueError):  # real-time signals the C library keeps for itself
            signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
