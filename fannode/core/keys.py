"""Shared-config keys and values: the rules every backend and the hub apply.

Keys are dotted names (`greeting.style`); values are anything JSON can hold except null
(a deleted key reads as None, so None cannot also be a value).
"""
from __future__ import annotations

import json
import re
from typing import Any

from fannode.exceptions import UsageError

# Dotted words: no empty word, so no key is '.', '..' or 'a..b' (ZooKeeper forbids the first two).
KEY = re.compile(r'[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\Z')
MAX_KEY = 200


def check_key(key: Any) -> str:
    if not isinstance(key, str) or len(key) > MAX_KEY or not KEY.match(key):
        raise UsageError('bad config key %r: expected dotted words of letters, digits, _ and - '
                         '(e.g. greeting.style), at most %d characters' % (key, MAX_KEY))
    return key


def check_value(key: str, value: Any) -> Any:
    """`value` as every backend will give it back: through JSON, so a value set on the hub
    reads the same from ZooKeeper, and a caller's later edits to its object change nothing."""
    if value is None:
        raise UsageError('config %s: a value cannot be null (delete the key instead)' % key)
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise UsageError('config %s: the value must be JSON-able: %s' % (key, e)) from None


def same(a: Any, b: Any) -> bool:
    """Equal as config values: `==` takes 1, 1.0 and true for one another, JSON does not."""
    return type(a) is type(b) and repr(a) == repr(b)
