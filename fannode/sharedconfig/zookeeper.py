"""`zookeeper://host:2181/prefix`: shared config as one znode per key,
`/prefix/config/<key>`, holding the value as JSON. Subscriptions are kazoo DataWatches,
which kazoo sets again after a reconnect or a new session.

Unique ids come from sequential znodes under `/prefix/ids/<name>`: ZooKeeper numbers each
child it creates there with a counter it keeps on disk and never hands out twice, so
sequence number n owns the block of ids n*ID_BLOCK+1 .. (n+1)*ID_BLOCK. The child is
deleted at once; the counter goes on (it counts deletions too, so blocks skip numbers)."""
from __future__ import annotations

import contextlib
import json
import logging
from typing import Any, Iterator

from kazoo.exceptions import KazooException, NodeExistsError, NoNodeError

from fannode.discovery.zookeeper import connect
from fannode.exceptions import FannodeError, RegistryUnavailable
from fannode.sharedconfig.base import SharedConfig

log = logging.getLogger(__name__)

# Ids per sequence number: fixed, whatever a caller asks for, so that no two processes
# can map two sequence numbers onto one id. The counter is a signed 32-bit number, which
# bounds a name to about 10^12 ids.
ID_BLOCK = 1000


@contextlib.contextmanager
def _reachable(url: str) -> Iterator[None]:
    """Kazoo's errors (connection loss, timeouts) as the one-line error the CLI shows."""
    try:
        yield
    except KazooException as e:
        raise RegistryUnavailable('ZooKeeper at %s did not answer: %s' % (url, type(e).__name__)) from None


def decode(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # set by hand (zkCli) as plain text: take it as a string
        return data.decode('utf-8', 'replace')


class ZookeeperSharedConfig(SharedConfig):
    def __init__(self, url: str):
        super().__init__(url)
        self.zk, prefix = connect(url)
        self.root = prefix + '/config'
        self.ids_root = prefix + '/ids'

    def _path(self, key: str) -> str:
        return '%s/%s' % (self.root, key)

    def _get(self, key: str) -> Any:
        with _reachable(self.url):
            try:
                data, _ = self.zk.get(self._path(key))
            except NoNodeError:
                return None
        return decode(data)

    def _set(self, key: str, value: Any) -> None:
        data = json.dumps(value).encode()
        with _reachable(self.url):
            try:
                self.zk.set(self._path(key), data)
            except NoNodeError:
                try:
                    self.zk.create(self._path(key), data, makepath=True)
                except NodeExistsError:  # another client created it first: ours is the later write
                    self.zk.set(self._path(key), data)

    def _delete(self, key: str) -> bool:
        with _reachable(self.url):
            try:
                self.zk.delete(self._path(key))
            except NoNodeError:
                return False
        return True

    def _keys(self, prefix: str) -> list[str]:
        with _reachable(self.url):
            try:
                return self.zk.get_children(self.root)
            except NoNodeError:
                return []

    def _reserve(self, name: str, count: int) -> tuple[int, int]:
        with _reachable(self.url):
            path = self.zk.create('%s/%s/b-' % (self.ids_root, name), b'', sequence=True, makepath=True)
            try:
                self.zk.delete(path)
            except NoNodeError:
                pass
        sequence = int(path.rpartition('b-')[2])  # 10 digits, or '-2147483648' once it wrapped
        if sequence < 0:  # the 32-bit counter wrapped: every block of this name is spent
            raise FannodeError('the ids of %s in ZooKeeper at %s are used up (about %d)'
                               % (name, self.url, 2 ** 31 * ID_BLOCK))
        return sequence * ID_BLOCK + 1, ID_BLOCK

    def _watch(self, key: str) -> None:
        def on_data(data: bytes | None, stat: Any, event: Any = None) -> None:
            # A kazoo callback: _changed never blocks (subscribers run in greenlets of their own).
            self._changed(key, decode(data) if stat is not None and data is not None else None)

        with _reachable(self.url):
            self.zk.DataWatch(self._path(key), on_data)

    def close(self) -> None:
        try:
            self.zk.stop()
        finally:
            self.zk.close()
