"""node.yml's `liveness:` key: how the node tells a running process from a wedged one
(fannode.node.liveness runs the probes)."""
from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

from fannode.core.config import Config
from fannode.node.readycheck import read_http, read_tcp

KINDS = ('rpc', 'http', 'tcp', 'exec')
OPTIONS = ('period', 'timeout', 'failures', 'initial_delay')
# A service instance's default: a SIGSTOPped one is replaced within period×failures + timeout
# (+ about 0.2 s for the new process to start) = 16 s.
DEFAULT_PERIOD, DEFAULT_TIMEOUT, DEFAULT_FAILURES = 5.0, 1.0, 3


@dataclass(frozen=True)
class Liveness:
    kind: str                               # 'rpc' | 'http' | 'tcp' | 'exec'
    target: str | int | tuple[str, ...]     # 'ping'; '/path' or URL; port or 'host:port'; argv
    period: float = DEFAULT_PERIOD
    timeout: float = DEFAULT_TIMEOUT
    failures: int = DEFAULT_FAILURES
    initial_delay: float = 0.0

    def describe(self) -> str:
        target = shlex.join(self.target) if isinstance(self.target, tuple) else self.target
        return '%s %s' % (self.kind, target)


def read_liveness(block: Config, used: tuple[str, ...], is_service: bool) -> Liveness | None:
    """The block's probe: None when it has none. A service instance has `rpc: ping` unless
    it says `liveness: false`; its own options (`{period: 1}`) may leave the kind out."""
    default = Liveness('rpc', 'ping') if is_service else None
    if 'liveness' not in block:
        return default
    value = block.get('liveness')
    if value is False:
        return None
    if value is True:
        if default is None:
            raise block.error('liveness', 'true needs a service instance (fannode instance ...); '
                                          'say which probe: one of %s' % ', '.join(KINDS))
        return default
    section = block.section('liveness')
    section.check_keys(KINDS + OPTIONS)
    kinds = [k for k in KINDS if k in section]
    if len(kinds) > 1 or (not kinds and default is None):
        raise block.error('liveness', 'expected exactly one of: %s%s' % (
            ', '.join(KINDS), ' (got %s)' % ', '.join(kinds) if kinds else ''))
    kind = kinds[0] if kinds else 'rpc'
    period = _seconds(section, 'period', DEFAULT_PERIOD, 0.05)
    timeout = _seconds(section, 'timeout', DEFAULT_TIMEOUT, 0.01)
    if timeout > period:  # one probe of a process at a time
        raise section.error('timeout', 'must not be longer than the period (%gs), got %g' % (period, timeout))
    failures = section.require('failures', int, DEFAULT_FAILURES)
    if failures < 1:
        raise section.error('failures', 'expected a whole number >= 1, got %r' % failures)
    initial_delay = _seconds(section, 'initial_delay', 0.0, 0.0)
    target = _target(section, kind, used, is_service) if kinds else 'ping'
    return Liveness(kind, target, period, timeout, failures, initial_delay)


def _seconds(section: Config, key: str, default: float, low: float) -> float:
    value = section.require(key, float, default)
    if not math.isfinite(value) or value < low:
        raise section.error(key, 'expected a number of seconds >= %g, got %r' % (low, value))
    return value


def _target(section: Config, kind: str, used: tuple[str, ...], is_service: bool) -> str | int | tuple[str, ...]:
    if kind == 'rpc':
        method = section.require(kind, str)
        if method != 'ping':
            raise section.error(kind, "expected 'ping' (the built-in method every instance answers), got %r"
                                % method)
        if not is_service:
            raise section.error(kind, 'needs a service instance (fannode instance ...); '
                                      'use http, tcp or exec for other commands')
        return method
    if kind == 'tcp':
        return read_tcp(section, kind)
    if kind == 'http':
        return read_http(section, kind, used)
    command = section.require(kind, (str, list))
    try:
        argv = tuple(shlex.split(command)) if isinstance(command, str) else tuple(
            str(section.require('%s.%d' % (kind, i), (str, int, float))) for i in range(len(command)))
    except ValueError as e:
        raise section.error(kind, 'cannot split the command: %s' % e) from None
    if not argv:
        raise section.error(kind, 'must not be empty')
    return argv
