"""Child processes that die with their parent.

A worker process started by ``dse`` (process-pool workers of a sweep, local Dask workers, the
optuna engine's worker processes) calls :func:`die_with_parent` first, so that killing
the ``dse`` process, even with SIGKILL, leaves none of its workers behind. On Linux the kernel
sends the child SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon
thread polls the parent's pid. Either way a parent that died before the call is noticed at once.

Workers stay in their parent's process group (no new session), so ``kill -9 -PGID`` reaches
them all as well.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

PARENT_ENV = "DSE_PARENT_PID"
"""Environment variable naming the pid of the ``dse`` process that started a ``dse worker``."""
POLL_S = 0.5
"""How often the fallback thread checks that the parent is alive (non-Linux)."""
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make this process exit when ``parent_pid`` (default: the current parent) exits."""
    parent = os.getppid() if parent_pid is None else parent_pid
    if not _pdeathsig():
        threading.Thread(target=_watch, args=(parent,), daemon=True, name="dse-lifeline").start()
    if os.getppid() != parent:  # the parent died before the lifeline was in place
        os._exit(1)


def die_with_parent_from_env() -> None:
    """:func:`die_with_parent` for the pid in ``$DSE_PARENT_PID``, if set (``dse worker``)."""
    value = os.environ.get(PARENT_ENV, "")
    if value.isdigit():
        die_with_parent(int(value))


def child_env() -> dict[str, str]:
    """The environment for a child process that should die with this one."""
    return {**os.environ, PARENT_ENV: str(os.getpid())}


def _pdeathsig() -> bool:
    """Ask the Linux kernel for SIGKILL when the parent dies; False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    stop = threading.Event()
    while not stop.wait(POLL_S):
        if os.getppid() != parent:
            os._exit(1)
