"""node.yml's `limits:` key: memory, cpu, pids and open files for each process of a
block (fannode.node.limitwatch enforces them)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from fannode.core.config import Config

KEYS = ('memory', 'cpu', 'pids', 'nofile')
_UNITS = {'': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40}
_SIZE = re.compile(r'\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*', re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    memory: int | None = None    # bytes of RSS, the process and what it started
    cpu: float | None = None     # a fraction of one core (cgroup only)
    pids: int | None = None      # processes in its group (its cgroup)
    nofile: int | None = None    # open files (RLIMIT_NOFILE)

    @property
    def empty(self) -> bool:
        return self == Limits()

    def describe(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in KEYS if getattr(self, k) is not None}


def parse_size(value: Any) -> int | None:
    """Bytes: an int, or '256M', '1G', '512MiB', '64mb' (K, M, G, T are powers of 1024)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if not isinstance(value, str):
        return None
    match = _SIZE.fullmatch(value)
    if match is None:
        return None
    size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    return int(size) if size >= 1 else None


def mib(size: int) -> str:
    return '%g MiB' % round(size / (1 << 20), 1)


def read_limits(block: Config) -> Limits:
    if 'limits' not in block:
        return Limits()
    section = block.section('limits')
    section.check_keys(KEYS)
    memory = None
    if 'memory' in section:
        raw = section.require('memory', (int, str))
        memory = parse_size(raw)
        if memory is None:
            raise section.error('memory', "expected a size such as 256M, 1G, 512MiB or bytes, got %r" % (raw,))
        if memory < 1 << 20:
            raise section.error('memory', 'expected at least 1M, got %r (%d bytes)' % (raw, memory))
    cpu = section.require('cpu', float, None)
    if cpu is not None and (not math.isfinite(cpu) or cpu <= 0):
        raise section.error('cpu', 'expected a fraction of a core > 0 (0.5, 2), got %r' % cpu)
    pids = section.require('pids', int, None)
    if pids is not None and pids < 1:
        raise section.error('pids', 'expected a whole number >= 1, got %r' % pids)
    nofile = section.require('nofile', int, None)
    if nofile is not None and not 16 <= nofile <= 1 << 20:
        raise section.error('nofile', 'expected a whole number from 16 to 1048576, got %r' % nofile)
    return Limits(memory, cpu, pids, nofile)
