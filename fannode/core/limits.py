"""The bounds fannode keeps on what it is sent and what it keeps: message sizes, nesting,
connections, timeouts, memory budgets. docs/limits.md lists every one with its error.

Each limit is a named constant in the module that enforces it, read once at import from
an environment variable through `setting()`, so a deployment moves a bound without code
and a test can see the name it is known by.
"""
from __future__ import annotations

import os
from typing import TypeVar

from fannode.exceptions import ConfigError

N = TypeVar('N', int, float)


def setting(name: str, default: N, low: N | None = None) -> N:
    """`$name` as a number of the type of `default` (at least `low`), or `default` when
    the variable is unset or empty."""
    text = os.environ.get(name, '').strip()
    if not text:
        return default
    kind = type(default)
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError('$%s: expected %s, got %r' % (
            name, 'a whole number' if kind is int else 'a number', text)) from None
    if low is not None and value < low:
        raise ConfigError('$%s: must be at least %s, got %s' % (name, low, text))
    return value


KIB, MIB = 1024, 1024 * 1024
