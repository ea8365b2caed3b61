"""What every shared-config backend offers; one module per URL scheme implements it.

Keys are dotted names (`greeting.style`); values are anything JSON can hold except null
(a deleted key reads as None, so None cannot also be a value).
"""
from __future__ import annotations

import abc
import json
import logging
import re
from typing import Any, Callable

import gevent

from fannode.exceptions import UsageError

log = logging.getLogger(__name__)

# Dotted words: no empty word, so no key is '.', '..' or 'a..b' (ZooKeeper forbids the first two).
KEY = re.compile(r'[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\Z')
MAX_KEY = 200

Callback = Callable[[str, Any], None]
_UNSET: Any = object()


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


class SharedConfig(abc.ABC):
    """Shared key/value settings of one cluster, kept where its registry is."""

    def __init__(self, url: str):
        self.url = url
        self.callbacks: dict[str, list[Callback]] = {}
        self.seen: dict[str, Any] = {}   # subscribed key → the value subscribers last heard of

    def get(self, key: str, default: Any = None) -> Any:
        """The value now, asked of the backend (subscribe to follow it)."""
        value = self._get(check_key(key))
        return default if value is None else value

    def set(self, key: str, value: Any) -> None:
        check_key(key)
        self._set(key, check_value(key, value))

    def delete(self, key: str) -> bool:
        """Remove `key`; False if there was no such key."""
        return self._delete(check_key(key))

    def keys(self, prefix: str = '') -> list[str]:
        """Every key that starts with `prefix`, sorted."""
        return sorted(k for k in self._keys(prefix) if k.startswith(prefix))

    def subscribe(self, key: str, callback: Callback) -> None:
        """`callback(key, value)` in a greenlet of its own after each change of `key`;
        `value` is None once it is deleted. Setting the value it already has is no change."""
        check_key(key)
        if key not in self.callbacks:
            self.callbacks[key] = []
            self.seen[key] = _UNSET
            try:
                self._watch(key)
            except BaseException:
                del self.callbacks[key], self.seen[key]
                raise
        self.callbacks[key].append(callback)

    def close(self) -> None:
        """Release connections; subscriptions end."""

    # -- for backends ------------------------------------------------------------

    def _changed(self, key: str, value: Any) -> None:
        """Backends report here each value they see for a watched key, first the current
        one, then after changes, repeats and re-syncs included: only real changes reach
        subscribers. Never blocks, so a backend may call it from a callback."""
        last = self.seen.get(key)
        if key not in self.seen or same(last, value):
            return
        self.seen[key] = value
        if last is _UNSET:  # the value when subscribed: not a change
            return
        for callback in self.callbacks[key]:
            gevent.spawn(self._run, callback, key, value)

    @staticmethod
    def _run(callback: Callback, key: str, value: Any) -> None:
        try:
            callback(key, value)
        except Exception:
            log.exception('config subscriber %r failed on %s', callback, key)

    @abc.abstractmethod
    def _get(self, key: str) -> Any:
        """The value, or None when there is no such key."""

    @abc.abstractmethod
    def _set(self, key: str, value: Any) -> None: ...

    @abc.abstractmethod
    def _delete(self, key: str) -> bool: ...

    @abc.abstractmethod
    def _keys(self, prefix: str) -> list[str]:
        """Keys starting with `prefix` (more is fine: the caller filters)."""

    @abc.abstractmethod
    def _watch(self, key: str) -> None:
        """Start reporting `key` to `_changed`: its current value, then every change."""
