"""node.yml's `version:` and `rollout:` keys of a block, and whether a change of the block
replaces its processes one at a time (fannode.node.rollout) or stops and starts them all."""
from __future__ import annotations

import math
from dataclasses import dataclass

from fannode.core.config import Config

STRATEGIES = ('rolling', 'restart')
# Readiness seen per process: a new one is told apart from the old ones it replaces.
# tcp and http checks answer for the port, which the old processes hold too.
PER_PROCESS = ('registered', 'log')


@dataclass(frozen=True)
class RolloutSpec:
    strategy: str = 'rolling'   # 'rolling' | 'restart'
    surge: int = 1              # new processes started at once
    timeout: float | None = None  # seconds each new process may take to be ready (None: ready.timeout)


def read_version(block: Config) -> str:
    if 'version' not in block:
        return ''
    value = block.require('version', (str, int, float))
    if isinstance(value, (float, bool)):
        # YAML reads 2.0 as a number: 1.10 would become '1.1'
        raise block.error('version', "write the version as text: version: '%s' (YAML reads it as a number)" % value)
    text = str(value).strip()
    if not text or len(text) > 64 or any(c.isspace() or not c.isprintable() for c in text):
        raise block.error('version', 'expected a version such as 2.0.0, got %r' % (value,))
    return text


def read_rollout(block: Config) -> RolloutSpec | None:
    """None: the default (rolling when readiness is seen per process)."""
    if 'rollout' not in block:
        return None
    value = block.get('rollout')
    if isinstance(value, bool):
        return RolloutSpec() if value else RolloutSpec('restart')
    if not isinstance(value, Config):
        raise block.error('rollout', 'expected true, false or a mapping ({surge: 1, timeout: 60, '
                                     'strategy: rolling|restart}), got %r' % (value,))
    section = block.section('rollout')
    section.check_keys(('strategy', 'surge', 'timeout'))
    strategy = section.require('strategy', str, 'rolling')
    if strategy not in STRATEGIES:
        raise section.error('strategy', 'expected one of: %s, got %r' % (', '.join(STRATEGIES), strategy))
    surge = section.require('surge', int, 1)
    if isinstance(surge, bool) or surge < 1:
        raise section.error('surge', 'expected a whole number >= 1, got %r' % (surge,))
    timeout = section.require('timeout', float, None)
    if timeout is not None and (not math.isfinite(timeout) or timeout <= 0):
        raise section.error('timeout', 'expected a number of seconds > 0, got %r' % (timeout,))
    return RolloutSpec(strategy, surge, timeout)


def rolling(rollout: RolloutSpec | None, numprocesses: int, ready_kind: str, port: int | None = None) -> bool:
    """Whether a change of the block (command, env, cwd, version...) is a rolling replace."""
    if numprocesses < 1 or port is not None:
        # nothing to keep serving; or a Procfile block, whose processes' PORT comes from
        # the worker index: a second set beside the first would take the same ports
        return False
    if rollout is None:
        return ready_kind in PER_PROCESS
    return rollout.strategy == 'rolling'
