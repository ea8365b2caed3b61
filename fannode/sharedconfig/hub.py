"""`hub://host:port`: shared config kept by the embedded hub (in its journal, when it has one).

Subscribed keys are watched like looked-up services are: the hub pushes `config.changed`,
and a sync every second renews the watches and brings back whatever this client has
stale (a lost notification; every key after a hub restart, which has a new epoch).
"""
from __future__ import annotations

from typing import Any

import gevent
import zmq.green as zmq

from fannode.sharedconfig.base import SharedConfig
from fannode.core import wire
from fannode.exceptions import Unavailable, UsageError
from fannode.hub.client import HubLink, HubRefused

SYNC_EVERY = 1.0   # well inside the hub's 5 s watch lease


def newer(version: str, than: str | None) -> bool:
    """Versions are `<epoch>.<n>`: within one hub's life n orders them, so a sync reply
    that crossed a notification cannot take a key back; a new epoch always wins."""
    if than is None:
        return True
    epoch, _, n = version.partition('.')
    old_epoch, _, old_n = than.partition('.')
    return epoch != old_epoch or int(n) > int(old_n)


class HubSharedConfig(SharedConfig):
    def __init__(self, url: str, context: zmq.Context | None = None):
        super().__init__(url)
        self.link = HubLink(url, self._on_notify, context)
        self.versions: dict[str, str] = {}   # watched key → the version last applied

    def _get(self, key: str) -> Any:
        return self.link.call('config_get', key=key)['value']

    def _set(self, key: str, value: Any) -> None:
        self.link.call('config_set', key=key, value=value)

    def _delete(self, key: str) -> bool:
        return self.link.call('config_delete', key=key)

    def _keys(self, prefix: str) -> list[str]:
        return self.link.call('config_keys', prefix=prefix)

    def _reserve(self, name: str, count: int) -> tuple[int, int]:
        try:
            block = self.link.call('ids', name=name, count=count)
        except HubRefused as e:
            if isinstance(e.answer, Unavailable):  # full or stopping: worth waiting out
                raise
            raise UsageError(str(e)) from None
        return block['first'], block['count']

    def _watch(self, key: str) -> None:
        self._sync({key: ''})
        self.link.start(self._sync_loop)

    def _sync(self, versions: dict[str, str]) -> None:
        for snapshot in self.link.call('config_watch', versions=versions).values():
            self._apply(snapshot)

    def _sync_loop(self) -> None:
        while True:
            gevent.sleep(SYNC_EVERY)
            self.link.guarded(lambda: self._sync({k: self.versions.get(k, '') for k in self.callbacks}))

    def _on_notify(self, msg: wire.Message) -> None:
        if msg.subject == 'config.changed' and msg.body.get('key') in self.versions:
            self._apply(msg.body)

    def _apply(self, snapshot: dict[str, Any]) -> None:
        key, version = snapshot['key'], snapshot['version']
        if newer(version, self.versions.get(key)):
            self.versions[key] = version
            self._changed(key, snapshot['value'])

    def close(self) -> None:
        self.link.close()
