"""Which member owns a key: rendezvous (highest random weight) hashing.

Every member gets a score for the key, a hash of both; the highest wins. Everyone who
knows the same members picks the same owner without talking, and a change of members
moves only the keys it must: a member joining takes about 1/(N+1) of the keys, each from
whoever had it; a member leaving hands each of its keys to the next best, the others stay.

Keys are compared by value as JSON gives them (7 and "7" are two keys; 7 and 7.0 are
one only if written the same): a key must be a string, a number, a boolean or null.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, TypeVar

from fannode.exceptions import UsageError

try:  # hashlib's own blake2b, without hashlib loading OpenSSL: 3.7 MiB in every process
    from _blake2 import blake2b
except ImportError:  # another Python than CPython
    from hashlib import blake2b

M = TypeVar('M')


def key_text(value: Any, what: str = 'shard key') -> str:
    """The canonical text of a key; UsageError for a value that cannot be one."""
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise UsageError('%s: expected a string, a number, true/false or null, got %s'
                         % (what, type(value).__name__))
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        raise UsageError('%s: %r cannot be a shard key' % (what, value)) from None


def score(key: str, member: str) -> int:
    return int.from_bytes(blake2b(('%s\0%s' % (member, key)).encode(), digest_size=8).digest(), 'big')


def owner(key: str, members: Iterable[tuple[str, M]]) -> M | None:
    """The member (given as (name, value) pairs) that owns `key`; None without members."""
    best, best_score = None, -1
    for name, value in members:
        s = score(key, name)
        if s > best_score:
            best, best_score = value, s
    return best


def ranked(key: str, members: Iterable[tuple[str, M]]) -> list[M]:
    """The members in the order they would own `key`: the owner, then whoever owns it
    once the owner is gone, and so on."""
    return [value for _, _, value in sorted(((score(key, name), name, value) for name, value in members),
                                            key=lambda t: (-t[0], t[1]))]


def instances_by_rank(key: Any, instances: Iterable[Any], what: str = 'shard key') -> list[Any]:
    """The ready instances (fannode.core.instance.InstanceInfo) of a service in the order
    they would own shard key `key` (a value, not yet text): what the RPC client, URL shards
    and `fannode shard` all use, so they agree."""
    return ranked(key_text(key, what), ((i.id, i) for i in instances if getattr(i, 'ready', True)))
