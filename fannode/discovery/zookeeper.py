"""`zookeeper://host1:2181,host2:2181/prefix`: discovery across machines.

Each instance is one ephemeral znode per service it offers, at
`/prefix/services/<Service>/<instance id>`, holding its InstanceInfo as JSON. ZooKeeper
removes them when the instance's session ends; the instance creates them again on a new
session (after a network cut or a laptop's sleep), replacing a leftover of its own.
Lookups are cached and kept current by watches, so callers never poll: a child watch on
the service's znode sees instances come and go, and a data watch on it sees records
change, as whoever rewrites a record also touches the service's znode (one watch per
service, not one per instance). A znode that does not hold an instance record (written
by hand, or by something else) is skipped with a warning, never fails a lookup.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable
from urllib.parse import urlsplit

import gevent
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException, NodeExistsError, NoNodeError
from kazoo.handlers.gevent import SequentialGeventHandler
from kazoo.retry import KazooRetry

from fannode.discovery.base import InstanceInfo, Registry
from fannode.exceptions import RegistryUnavailable, UsageError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
SESSION_TIMEOUT = 10.0   # how long a dead instance stays listed, at most


def parse_url(url: str) -> tuple[str, str]:
    """('host1:2181,host2:2181', '/prefix') from a zookeeper:// URL."""
    parts = urlsplit(url)
    if parts.scheme != 'zookeeper' or not parts.netloc:
        raise UsageError("bad ZooKeeper URL %r: expected zookeeper://host:2181[,host:2181...]/prefix" % url)
    hosts = ','.join(h if ':' in h else h + ':2181' for h in parts.netloc.split(','))
    prefix = '/' + parts.path.strip('/') if parts.path.strip('/') else '/fannode'
    return hosts, prefix


def connect(url: str, timeout: float = CONNECT_TIMEOUT) -> tuple[KazooClient, str]:
    """A started client with the gevent handler, retrying forever once connected."""
    hosts, prefix = parse_url(url)
    if not logging.getLogger().handlers:  # a CLI command: our one-line error says it all
        logging.getLogger('kazoo').addHandler(logging.NullHandler())
        logging.getLogger('kazoo').propagate = False
    handler = SequentialGeventHandler()
    client = KazooClient(hosts=hosts, handler=handler, timeout=SESSION_TIMEOUT,
                         connection_retry=KazooRetry(max_tries=-1, max_delay=2.0, sleep_func=handler.sleep_func),
                         command_retry=KazooRetry(max_tries=3, max_delay=1.0, sleep_func=handler.sleep_func))
    try:
        client.start(timeout=timeout)
    except (Exception, gevent.Timeout):  # the gevent handler times out with gevent.Timeout
        client.close()
        raise RegistryUnavailable('cannot reach ZooKeeper at %s within %gs: is it running?'
                                  % (hosts, timeout)) from None
    return client, prefix


_FIELDS = {'id': str, 'endpoint': str, 'pid': int, 'host': str, 'version': str, 'meta': dict}


def _record(data: bytes | None) -> InstanceInfo | None:
    """The InstanceInfo a znode holds; None when it holds something else."""
    try:
        record = json.loads(data or b'')
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not all(isinstance(record.get(k), t) for k, t in _FIELDS.items()
                                                if k in record or k in ('id', 'endpoint')):
        return None
    services, started = record.get('services'), record.get('started', 0.0)
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services) \
            or isinstance(started, bool) or not isinstance(started, (int, float)):
        return None
    return InstanceInfo.from_dict(record)


class ZookeeperRegistry(Registry):
    def __init__(self, url: str):
        super().__init__(url)
        self.zk, self.prefix = connect(url)
        self.cache: dict[str, list[InstanceInfo]] = {}
        self.registered: dict[str, InstanceInfo] = {}
        self.lost = False
        self.zk.add_listener(self._on_state)

    def _path(self, *parts: str) -> str:
        return '/'.join((self.prefix, 'services') + parts)

    # -- lookups -----------------------------------------------------------------

    def lookup(self, service: str) -> list[InstanceInfo]:
        if service not in self.cache:
            self.zk.ensure_path(self._path(service))
            self.cache[service] = self._read(service)
            self.zk.ChildrenWatch(self._path(service), lambda children, s=service: self._changed(s))
            self.zk.DataWatch(self._path(service), self._touched(service))
        return self.cache[service]

    def _touched(self, service: str) -> Callable[..., None]:
        """The data watch's callback: a record of `service` changed."""
        first = [True]

        def touched(*args: Any) -> None:  # kazoo passes (data, stat) or (data, stat, event)
            if first[0]:  # kazoo calls at once: the child watch has told of that already
                first[0] = False
            else:
                self._changed(service)
        return touched

    def _changed(self, service: str) -> None:
        # Never block in a kazoo callback: read the new children in a greenlet.
        gevent.spawn(self._refresh, service)

    def _refresh(self, service: str) -> None:
        try:
            instances = self._read(service)
        except KazooException as e:
            log.warning('cannot read %s from ZooKeeper: %s', service, e)
            return
        self.cache[service] = instances
        for listener in self.listeners:
            listener(service, instances)

    def _read(self, service: str) -> list[InstanceInfo]:
        found = []
        try:
            children = self.zk.get_children(self._path(service))
        except NoNodeError:
            return []
        for child in sorted(children):
            try:
                data, _ = self.zk.get(self._path(service, child))
            except NoNodeError:  # gone between the listing and the read
                continue
            info = _record(data)
            if info is None:
                log.warning('ignoring %s: not an instance record', self._path(service, child))
            else:
                found.append(info)
        return found

    def services(self) -> dict[str, list[InstanceInfo]]:
        try:
            names = self.zk.get_children(self._path())
        except NoNodeError:
            return {}
        found = {name: self._read(name) for name in sorted(names)}
        return {name: instances for name, instances in found.items() if instances}

    # -- registration ------------------------------------------------------------

    def register(self, instance: InstanceInfo) -> None:
        data = json.dumps(instance.to_dict()).encode()  # before anything changes: TypeError if it cannot be sent
        old = self.registered.get(instance.id)
        self.registered[instance.id] = instance
        self._announce(instance, data)
        for service in sorted(set(old.services if old else ()) - set(instance.services)):
            self._withdraw(service, instance.id)  # it offers that service no more

    def _announce(self, instance: InstanceInfo, data: bytes | None = None) -> None:
        data = data or json.dumps(instance.to_dict()).encode()
        for service in instance.services:
            path = self._path(service, instance.id)
            try:
                self.zk.create(path, data, ephemeral=True, makepath=True)
            except NodeExistsError:
                # Ours from this session: update it, and touch the service's znode so
                # lookups elsewhere read it again. Ours from a session ZooKeeper has not
                # expired yet (we reconnected after a sleep): replace it, so it goes with
                # this session, not the old one.
                _, stat = self.zk.get(path)
                if stat.ephemeralOwner == self.zk.client_id[0]:
                    self.zk.set(path, data)
                    self.zk.set(self._path(service), b'')
                else:
                    self.zk.delete(path)
                    self.zk.create(path, data, ephemeral=True, makepath=True)

    def _withdraw(self, service: str, instance_id: str) -> None:
        try:
            self.zk.delete(self._path(service, instance_id))
        except NoNodeError:
            pass
        except KazooException as e:
            log.warning('could not unregister %s from %s: %s', instance_id[:8], service, e)

    def unregister(self, instance: InstanceInfo) -> None:
        old = self.registered.pop(instance.id, None)
        for service in sorted(set(instance.services) | set(old.services if old else ())):
            self._withdraw(service, instance.id)

    def _on_state(self, state: str) -> None:
        if state == KazooState.LOST:
            self.lost = True
            log.warning('ZooKeeper session lost; registering again once reconnected')
        elif state == KazooState.SUSPENDED:
            log.warning('ZooKeeper connection suspended; retrying')
        elif state == KazooState.CONNECTED:
            if self.lost:
                self.lost = False
                gevent.spawn(self._recover)
            else:
                log.info('ZooKeeper connection back')

    def _recover(self) -> None:
        """A new session: our ephemeral nodes are gone (kazoo sets the watches again)."""
        for instance in list(self.registered.values()):
            try:
                self._announce(instance)
                log.info('registered %s again with ZooKeeper', instance.id[:8])
            except KazooException as e:
                log.warning('could not register %s again: %s', instance.id[:8], e)
        for service in list(self.cache):
            self._refresh(service)

    def close(self) -> None:
        try:
            self.zk.stop()
        finally:
            self.zk.close()

