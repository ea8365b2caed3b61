"""node.yml's `ready:` key: when a block counts as ready (fannode.node.ready runs the checks)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

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
        target = read_tcp(ready, kind)
    elif kind == 'http':
        target = read_http(ready, kind, used)
    else:
        target = ready.require(kind, str)
        if not target:
            raise ready.error(kind, 'expected the text to wait for, got an empty string')
    return ReadyCheck(kind, target, timeout)


def read_tcp(section: Config, key: str) -> int | str:
    """A port, or 'host:port' (of `ready:` and `liveness:`)."""
    address: int | str = section.require(key, (int, str))
    port = address if isinstance(address, int) else 0
    if isinstance(address, str):
        host, _, digits = address.rpartition(':')
        port = int(digits) if host and digits.isdigit() else 0
    if not 1 <= port <= 65535:
        raise section.error(key, "expected a port 1..65535 or 'host:port', got %r" % (address,))
    return address


def read_http(section: Config, key: str, used: tuple[str, ...]) -> str:
    """An http(s):// URL, or a '/path' on the block's first socket (of `ready:` and `liveness:`)."""
    url: str = section.require(key, str)
    # a '/path' stays as written: the block puts it on the port it actually bound
    if url.startswith('/') and not used:
        raise section.error(key, 'a path needs a socket on the instance (sockets: [...]) '
                                 'or a full http:// URL')
    if not url.startswith(('/', 'http://', 'https://')):
        raise section.error(key, "expected an http:// URL or a '/path', got %r" % url)
    problem = url_problem(url)
    if problem:
        raise section.error(key, '%s in %r' % (problem, url))
    return url


def url_problem(url: str) -> str | None:
    """What a check could not connect to in an http(s) URL: no host, a bad port."""
    if url.startswith('/'):
        return None
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises for a port out of 0..65535 or not a number
    except ValueError:
        return 'expected a port 1..65535'
    if parts.port == 0:
        return 'expected a port 1..65535'
    return None if parts.hostname else 'expected a host'
