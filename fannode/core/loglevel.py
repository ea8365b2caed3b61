"""Changing a logger's level in a running process (the `change_loglevel` built-in), for
good or for a while."""
from __future__ import annotations

import logging
from typing import Any

import gevent

from fannode.exceptions import BadArguments

log = logging.getLogger(__name__)

LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')
MAX_NAME = 200  # characters in a logger name
MAX_PERIOD = 7 * 24 * 3600.0  # seconds a change may last before it reverts

# logger name -> (the timer that reverts it, the level it reverts to). Loggers are the
# process's, so this is too.
_reverts: dict[str, tuple[gevent.Greenlet, int]] = {}


def check_level(level: Any) -> str:
    name = level.upper() if isinstance(level, str) else ''
    if name not in LEVELS:
        raise BadArguments('unknown log level %r (expected one of %s)' % (level, ', '.join(LEVELS)))
    return name


def check_period(period: Any) -> float | None:
    if period is None:
        return None
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not 0 < period <= MAX_PERIOD:
        raise BadArguments('period must be a positive number of seconds up to %d (a week), got %r'
                           % (MAX_PERIOD, period))
    return float(period)


def check_logger(name: Any) -> str:
    """A logger name as given: at most MAX_NAME characters (no look-up: the CLI checks too)."""
    if not isinstance(name, str):
        raise BadArguments('logger must be a name, got %r' % (name,))
    if len(name) > MAX_NAME:
        raise BadArguments('logger name too long: %d characters (at most %d)' % (len(name), MAX_NAME))
    return name


def existing_logger(name: str) -> logging.Logger:
    """The logger `name` ('' is the root one) if this process has it. Made on demand, it would
    stay for good: a caller sending new names could grow the process without bound."""
    if name and name not in logging.root.manager.loggerDict:
        raise BadArguments("no logger named '%s' in this process (loggers exist once code logs "
                           "through them, e.g. 'fannode' or the services' modules)" % name)
    return logging.getLogger(name or None)


def change_level(level: str, logger: str = '', period: float | None = None) -> dict[str, Any]:
    """Set `logger` (the root logger when '') to `level`; back to the level it had after
    `period` seconds when given. Another change of the same logger cancels a pending
    revert; a new period still reverts to the level from before the first change."""
    new = check_level(level)
    period = check_period(period)
    target = existing_logger(check_logger(logger))
    old = target.level
    restore = old
    pending = _reverts.pop(logger, None)
    if pending is not None:
        pending[0].kill(block=False)
        restore = pending[1]
    shown = logger or 'root'
    _set(target, logging.getLevelNamesMapping()[new], 'log level of %s: %s -> %s%s' % (
        shown, logging.getLevelName(old), new, ' for %gs' % period if period else ''))
    if period:
        _reverts[logger] = (gevent.spawn_later(period, _revert, logger, restore), restore)
    return {'logger': shown, 'old': logging.getLevelName(old), 'new': new, 'period': period}


def _revert(logger: str, level: int) -> None:
    _reverts.pop(logger, None)
    _set(logging.getLogger(logger or None), level,
         'log level of %s back to %s' % (logger or 'root', logging.getLevelName(level)))


def _set(target: logging.Logger, level: int, message: str) -> None:
    # Logged under the more verbose of the two levels, so the line shows either way.
    if level > target.level:
        log.info(message)
        target.setLevel(level)
    else:
        target.setLevel(level)
        log.info(message)
