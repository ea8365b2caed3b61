"""What every shared-config backend offers; one module per URL scheme implements it.

Keys are dotted names (`greeting.style`); values are anything JSON can hold except null
(a deleted key reads as None, so None cannot also be a value).
"""
from __future__ import annotations

import abc
import logging
from typing import Any, Callable

import gevent

from fannode.core.keys import check_key, check_value, same
from fannode.sharedconfig.ids import IdBlocks

log = logging.getLogger(__name__)

__all__ = ['SharedConfig', 'check_key', 'check_value', 'same']

Callback = Callable[[str, Any], None]
_UNSET: Any = object()


class SharedConfig(abc.ABC):
    """Shared key/value settings of one cluster, kept where its registry is."""

    def __init__(self, url: str):
        self.url = url
        self.callbacks: dict[str, list[Callback]] = {}
        self.seen: dict[str, Any] = {}   # subscribed key → the value subscribers last heard of
        self.ids = IdBlocks(url, self._reserve)

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

    def unique_id(self, name: str) -> int:
        """An id of `name` no other call in the cluster gets; each process's ids of a name
        increase (fannode.sharedconfig.ids)."""
        return self.ids.next(name)

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
    def _reserve(self, name: str, count: int) -> tuple[int, int]:
        """A block of fresh ids of `name`, (first, how many): about `count`, never handed
        out before. RegistryUnavailable when the backend cannot be reached."""

    @abc.abstractmethod
    def _watch(self, key: str) -> None:
        """Start reporting `key` to `_changed`: its current value, then every change."""
