"""What the hub keeps is bounded in bytes: each thing kept is sized once, when it arrives,
by `footprint` (an estimate of the memory its Python objects take), and counted against
the budget of the store that keeps it.

A store over its budget either drops its oldest things (log records: they are a view)
or refuses new ones (events, config, instances: dropping those would lose them silently).
Drops and refusals are counted, shown by `hub.stats`, and logged at most once a minute.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any

from fannode.exceptions import Unavailable

log = logging.getLogger(__name__)

REPORT_EVERY = 60.0  # seconds between two log lines about one budget's drops or refusals

# Rough sizes of CPython objects on 64-bit builds (sys.getsizeof), for the estimate.
_DICT, _DICT_ITEM, _LIST, _ITEM, _STR, _BYTES, _NUMBER, _OTHER = 64, 40, 56, 8, 49, 33, 32, 64


def footprint(value: Any) -> int:
    """About how many bytes `value`, as the codec decoded it, takes in memory (within a
    factor of ~1.5 for typical records). One pass, no encoding."""
    return measure(value)[0]


def measure(value: Any) -> tuple[int, int]:
    """`value`'s footprint in memory, and about how many bytes it takes encoded (what a
    socket holds while it waits to be sent)."""
    size = wire = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            size += _STR + len(item)
            wire += 2 + len(item)
        elif kind is dict:
            size += _DICT + _DICT_ITEM * len(item)
            wire += 3
            for key, inner in item.items():
                if type(key) is str:
                    size += len(key)  # the decoder interns map keys: no object of their own
                    wire += 2 + len(key)
                else:
                    size += _NUMBER
                    wire += 9
                stack.append(inner)
        elif kind is list or kind is tuple:
            size += _LIST + _ITEM * len(item)
            wire += 3
            stack.extend(item)
        elif kind is int or kind is float:
            size += _NUMBER
            wire += 9
        elif kind is bytes:
            size += _BYTES + len(item)
            wire += 3 + len(item)
        elif item is None or kind is bool:
            wire += 1  # singletons: no memory of their own
        elif kind is set or kind is frozenset:
            size += 216 + _ITEM * 2 * len(item)
            wire += 5
            stack.extend(item)
        else:  # datetime, Decimal, UUID ...
            size += _OTHER
            wire += 20
    return size, wire


def mib(n: float) -> str:
    return '%.1f MiB' % (n / (1024 * 1024))


class Budget:
    """Bytes in use against a limit, and what did not fit. `env` names the variable that
    sets the limit, for the messages."""

    def __init__(self, name: str, limit: int, env: str):
        self.name = name
        self.limit = limit
        self.env = env
        self.used = 0
        self.dropped = 0   # things let go to make room (oldest first)
        self.refused = 0   # things not taken
        self._reported = (0, 0)
        self._last_report = -math.inf  # the first line comes at once

    def fits(self, size: int) -> bool:
        return self.used + size <= self.limit

    def over(self) -> bool:
        return self.used > self.limit

    def take(self, size: int) -> None:
        self.used += size

    def claim(self, size: int, refusal: str) -> None:
        """Take `size` more bytes, or refuse: Unavailable(`refusal` % why) and counted.
        For stores that never drop what they keep (registry, config, watches)."""
        if size > 0 and not self.fits(size):
            self.refused += 1
            raise Unavailable(refusal % self.full())
        self.take(size)

    def give(self, size: int) -> None:
        self.used -= size

    def full(self) -> str:
        """Why something was refused, for a NACK."""
        return '%s is full (%s of %s, $%s)' % (self.name, mib(self.used), mib(self.limit), self.env)

    def stats(self) -> dict[str, Any]:
        return {'used': self.used, 'limit': self.limit, 'dropped': self.dropped, 'refused': self.refused}

    def report(self, now: float | None = None) -> None:
        """Log what was dropped or refused since the last line, at most once a minute."""
        now = time.monotonic() if now is None else now
        if (self.dropped, self.refused) == self._reported or now - self._last_report < REPORT_EVERY:
            return
        dropped, refused = self.dropped - self._reported[0], self.refused - self._reported[1]
        log.warning('%s: %s (%s of %s used, $%s)', self.name, ', '.join(
            part for part in ('%d dropped to make room, oldest first' % dropped if dropped else '',
                              '%d refused' % refused if refused else '') if part),
            mib(self.used), mib(self.limit), self.env)
        self._reported = (self.dropped, self.refused)
        self._last_report = now
