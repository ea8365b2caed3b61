"""node.yml's `ready:` key: when a block counts as ready (fannode.node.ready runs the checks)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from fannode.core.config import Config

KINDS = ('tcp', 'http', 'log', 'registered')


@dataclass(frozen=True)
class ReadyCheck:
    kind: str  # 'registered' | 'tcp' | 'http' | 'log' | 'started'
    target: str | int | None = None
    timeout: float = 60.0


def read_ready(block: Config, used: tuple[str, ...]) -> ReadyCheck:
    ready = block.section('ready')
    ready.check_keys(KINDS + ('timeout',))
    kinds = [k for k in KINDS if k in ready]
    if len(kinds) != 1:
        raise block.error('ready', 'expected exactly one of: %s%s' % (
            ', '.join(KINDS), ' (got %s)' % ', '.join(kinds) if kinds else ''))
    kind = kinds[0]
    timeout = ready.require('timeout', float, 60.0)
    if not math.isfinite(timeout) or timeout <= 0:
        raise ready.error('timeout', 'expected a number of seconds > 0, got %r' % timeout)
    target: str | int | None
    if kind == 'registered':
        if ready.require(kind, bool) is not True:
            raise ready.error(kind, 'expected true (leave ready out to only wait for the start)')
        target = None
    elif kind == 'tcp':
        address: int | str = ready.require(kind, (int, str))
        port = address if isinstance(address, int) else 0
        if isinstance(address, str):
            host, _, digits = address.rpartition(':')
            port = int(digits) if host and digits.isdigit() else 0
        if not 1 <= port <= 65535:
            raise ready.error(kind, "expected a port 1..65535 or 'host:port', got %r" % (address,))
        target = address
    elif kind == 'http':
        url: str = ready.require(kind, str)
        # a '/path' stays as written: the block puts it on the port it actually bound
        if url.startswith('/') and not used:
            raise ready.error(kind, 'a path needs a socket on the instance (sockets: [...]) '
                                    'or a full http:// URL')
        if not url.startswith(('/', 'http://', 'https://')):
            raise ready.error(kind, "expected an http:// URL or a '/path', got %r" % url)
        target = url
    else:
        target = ready.require(kind, str)
        if not target:
            raise ready.error(kind, 'expected the text to wait for, got an empty string')
    return ReadyCheck(kind, target, timeout)
