"""`local://name`: shared config inside one process, for tests of services without a hub.
Every client with the same URL in one process sees the same keys; they go with the last
client of that URL, as local discovery does."""
from __future__ import annotations

import json
from typing import Any

from fannode.sharedconfig import ids
from fannode.sharedconfig.base import SharedConfig

_values: dict[str, dict[str, str]] = {}   # url → key → value as JSON, so no caller shares an object
_clients: dict[str, list['LocalSharedConfig']] = {}
_ids: dict[str, dict[str, int]] = {}      # url → name → the next id to hand out


class LocalSharedConfig(SharedConfig):
    def __init__(self, url: str):
        super().__init__(url)
        self.values = _values.setdefault(url, {})
        _clients.setdefault(url, []).append(self)

    def _get(self, key: str) -> Any:
        text = self.values.get(key)
        return None if text is None else json.loads(text)

    def _set(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)
        self._tell(key)

    def _delete(self, key: str) -> bool:
        if self.values.pop(key, None) is None:
            return False
        self._tell(key)
        return True

    def _keys(self, prefix: str) -> list[str]:
        return list(self.values)

    def _reserve(self, name: str, count: int) -> tuple[int, int]:
        following = _ids.setdefault(self.url, {}).get(name, 1)
        _ids[self.url][name] = following + count
        return following, count

    def _watch(self, key: str) -> None:
        self._changed(key, self._get(key))

    def _tell(self, key: str) -> None:
        for client in _clients.get(self.url, []):
            client._changed(key, client._get(key))  # each its own copy

    def close(self) -> None:
        peers = _clients.get(self.url, [])
        if self in peers:
            peers.remove(self)
        if not peers:  # the last one out: the next test with this URL starts empty
            _clients.pop(self.url, None)
            _values.pop(self.url, None)
            _ids.pop(self.url, None)
            ids.forget(self.url)
