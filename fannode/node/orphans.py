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

PR_SET_PDEATHSIG = 1


def _die_with(parent: int):
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith('linux') else None

    def preexec() -> None:
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the node died between fork and prctl
            os._exit(1)
    return preexec


def patch_circus() -> None:
    """Chain the death signal into every Popen circus makes (called once by the node)."""
    import circus.process
    import psutil

    if getattr(circus.process.Popen, 'fannode', False):
        return

    def popen(*args, preexec_fn=None, **kwargs):
        mine = _die_with(os.getpid())

        def both() -> None:
            if preexec_fn is not None:
                preexec_fn()
            mine()
        return psutil.Popen(*args, preexec_fn=both, **kwargs)

    popen.fannode = True
    circus.process.Popen = popen
