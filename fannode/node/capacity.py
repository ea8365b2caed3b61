"""How many processes one node may run: bounded by what the machine can hold, so a typo
(`numprocesses: 10000`) is refused instead of forking until the machine stalls.

The limit is the least of MAX_AUTO, half the user's process limit (RLIMIT_NPROC: the node
shares it with everything else the user runs) and the machine's memory at
MEMORY_PER_PROCESS each. `$FANNODE_MAX_PROCESSES` replaces it, up or down.
"""
from __future__ import annotations

import functools
import resource
from collections.abc import Mapping
from typing import Any

from fannode.core.limits import MIB, setting
from fannode.exceptions import UsageError

MAX_PROCESSES = setting('FANNODE_MAX_PROCESSES', 0, low=0)  # 0: worked out from the machine
MAX_AUTO = 512                  # processes, when worked out
MEMORY_PER_PROCESS = 32 * MIB   # what a small Python service holds, roughly
OVERRIDE = 'set $FANNODE_MAX_PROCESSES to allow more'


@functools.lru_cache(maxsize=None)
def limit() -> int:
    return MAX_PROCESSES or _worked_out()[0]


def why() -> str:
    """Where the limit comes from, for error messages."""
    if MAX_PROCESSES:
        return 'set by $FANNODE_MAX_PROCESSES'
    return _worked_out()[1]


@functools.lru_cache(maxsize=None)
def _worked_out() -> tuple[int, str]:
    import psutil
    bounds = [(MAX_AUTO, "fannode's default cap")]
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY:
        bounds.append((max(1, soft // 2), 'half of RLIMIT_NPROC %d' % soft))
    memory = psutil.virtual_memory().total
    bounds.append((max(1, memory // MEMORY_PER_PROCESS), '%d MiB of memory at %d MiB a process'
                    % (memory // MIB, MEMORY_PER_PROCESS // MIB)))
    count, reason = min(bounds)
    return count, reason


def too_many(count: int, what: str) -> str:
    return '%s %d processes, more than this node may run: %d (%s); %s' % (
        what, count, limit(), why(), OVERRIDE)


def check_topology(instances: Any, counts: Mapping[str, int]) -> None:
    """`instances` (the node.yml section, a Config) raises at the key that goes over."""
    total = 0
    for name, count in counts.items():
        total += count
        if count > limit():
            raise instances.error('%s.numprocesses' % name, too_many(count, 'asks for'))
        if total > limit():
            raise instances.error('%s.numprocesses' % name, too_many(
                total, 'the blocks up to this one ask for'))


def check_scale(counts: Mapping[str, int], name: str, count: int) -> None:
    """`counts`: what each block of node.yml runs now (the hub the node adds is not counted)."""
    total = count + sum(c for n, c in counts.items() if n != name)
    if total > limit():
        raise UsageError('%s: %s' % (name, too_many(total, 'the node would run')))
