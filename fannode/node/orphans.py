"""Children die with the node, whatever kills it.

circus starts children with psutil.Popen and a preexec function of its own; a SIGKILLed
arbiter leaves them running (and holding the shared ports). On Linux each child asks the
kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG); the flag survives exec.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any, Callable

import psutil

PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith('linux') else None

    def preexec() -> None:
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the node died between fork and prctl
            os._exit(1)
    return preexec


def _popen(args: Any, preexec_fn: Callable[[], None] | None = None, **kwargs: Any) -> psutil.Popen:
    """circus' Popen, with the death signal after circus' own preexec function."""
    mine = _die_with(os.getpid())

    def both() -> None:
        if preexec_fn is not None:
            preexec_fn()
        mine()
    return psutil.Popen(args, preexec_fn=both, **kwargs)


def patch_circus() -> None:
    """Chain the death signal into every Popen circus makes (called by the node; twice
    changes nothing)."""
    import circus.process

    circus.process.Popen = _popen
