"""Readiness checks the node runs on its asyncio loop (it never imports gevent).

A service instance is ready when the hub lists it (matched by pid); other commands
when their `ready:` check passes: a TCP connect, an HTTP answer below 500, a log line.
"""
from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from urllib.parse import urlsplit

import zmq
import zmq.asyncio

from fannode.hub.client import hub_endpoint
from fannode.node import dealer

if TYPE_CHECKING:
    from kazoo.client import KazooClient

_T = TypeVar('_T')


class Listing:
    """What the node asks of a registry, from its list of (service, instance record)."""

    async def listed(self) -> list[tuple[str, dict[str, Any]]]:
        raise NotImplementedError

    async def registered_pids(self) -> dict[int, list[str]]:
        """pid → the services it registered as ready; empty when the registry does not answer."""
        return (await self.registrations())[0]

    async def registrations(self) -> Registrations:
        return _split(await self.listed())

    async def endpoints(self, host: str) -> Endpoints:
        """pid → (its RPC endpoint, a service it serves), for instances on `host`."""
        return _endpoints(await self.listed(), host)


class HubProbe(Listing):
    """Asks the hub which pids are registered. One DEALER, one request at a time."""

    def __init__(self, url: str, context: zmq.asyncio.Context):
        self.endpoint = hub_endpoint(url)
        self.context = context
        self.socket: zmq.asyncio.Socket | None = None
        self.lock = asyncio.Lock()  # a reply must reach the call that asked for it

    def _reset(self) -> zmq.asyncio.Socket:
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.connect(self.endpoint)
        return self.socket

    async def call(self, method: str, timeout: float = 1.0, **body: Any) -> Any:
        async with self.lock:
            return await self._call(method, timeout, body)

    async def _call(self, method: str, timeout: float, body: dict[str, Any]) -> Any:
        socket = self.socket if self.socket is not None else self._reset()
        try:
            return dealer.body_of(await dealer.request(socket, 'hub.' + method, body, timeout))
        except asyncio.TimeoutError:
            self._reset()  # a late reply must not answer the next request
            return None

    async def listed(self) -> list[tuple[str, dict[str, Any]]]:
        """(service, instance record) as the hub lists them; what has another shape is
        left out (the hub is another process: its answer is checked, not trusted)."""
        services = await self.call('services')
        return _records(services.items() if isinstance(services, dict) else ())

    async def forget(self, pid: int, host: str) -> None:
        """Unregister the instances of a dead process, rather than wait for their lease."""
        ids = {i['id'] for _, i in await self.listed()
               if i.get('pid') == pid and i.get('host') == host and isinstance(i.get('id'), str)}
        for instance_id in ids:
            await self.call('unregister', id=instance_id)

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None


class ZookeeperProbe(Listing):
    """The same questions of ZooKeeper, with kazoo's threading handler in a worker
    thread (the node runs asyncio, not gevent)."""

    def __init__(self, url: str):
        from fannode.discovery.zookeeper import parse_url
        self.hosts, self.prefix = parse_url(url)
        self.zk: KazooClient | None = None

    def _client(self) -> KazooClient:
        from kazoo.client import KazooClient
        if self.zk is None:
            zk = KazooClient(hosts=self.hosts, timeout=10.0)
            zk.start(timeout=5.0)
            self.zk = zk
        return self.zk

    def _instances(self) -> list[tuple[str, Any]]:  # path, its JSON
        import json
        from kazoo.exceptions import NoNodeError
        zk, root = self._client(), self.prefix + '/services'
        found = []
        try:
            services = zk.get_children(root)
        except NoNodeError:
            return []
        for service in services:
            for child in zk.get_children('%s/%s' % (root, service)):
                path = '%s/%s/%s' % (root, service, child)
                try:
                    found.append((path, json.loads(zk.get(path)[0])))
                except (NoNodeError, ValueError):
                    pass
        return found

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T | None:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, func, *args)
        except Exception:  # ZooKeeper away: nothing is ready, nothing forgotten, for now
            self.close()
            return None

    async def listed(self) -> list[tuple[str, dict[str, Any]]]:
        found = await self._run(self._instances) or []  # .../services/NAME/ID
        return [(path.rsplit('/', 2)[1], info) for path, info in found if isinstance(info, dict)]

    async def forget(self, pid: int, host: str) -> None:
        def delete() -> None:
            from kazoo.exceptions import NoNodeError
            zk = self._client()  # the one _instances() asks
            for path, info in self._instances():
                if isinstance(info, dict) and info.get('pid') == pid and info.get('host') == host:
                    try:
                        zk.delete(path)
                    except NoNodeError:
                        pass
        await self._run(delete)

    def close(self) -> None:
        if self.zk is not None:
            zk, self.zk = self.zk, None
            try:
                zk.stop()
                zk.close()
            except Exception:
                pass


Probe = HubProbe | ZookeeperProbe  # what the node asks about registrations
# pid → services it registered as ready; pid → dependencies it waits for (registered not ready)
Registrations = tuple[dict[int, list[str]], dict[int, list[str]]]
Endpoints = dict[int, tuple[str, str]]  # pid → (RPC endpoint, service), for liveness probes


def _endpoints(records: list[tuple[str, dict[str, Any]]], host: str) -> Endpoints:
    found: Endpoints = {}
    for name, info in records:
        pid, endpoint = info.get('pid'), info.get('endpoint')
        if (isinstance(pid, int) and isinstance(endpoint, str) and endpoint.startswith(('tcp://', 'ipc://'))
                and info.get('host', host) == host):
            found.setdefault(pid, (endpoint, name))
    return found


def is_ready(info: dict[str, Any]) -> bool:
    """An instance whose hard dependencies have no instance registers with ready: false
    (older ones say nothing: ready)."""
    return info.get('ready', True) is not False


def _split(records: list[tuple[str, dict[str, Any]]]) -> Registrations:
    ready: dict[int, list[str]] = {}
    waiting: dict[int, list[str]] = {}
    for name, info in records:
        pid = info.get('pid')
        if not isinstance(pid, int):  # not an instance
            continue
        if is_ready(info):
            ready.setdefault(pid, []).append(name)
        else:
            meta = info.get('meta')
            missing = meta.get('missing') if isinstance(meta, dict) else None
            names = waiting.setdefault(pid, [])
            for service in missing if isinstance(missing, list) else ():
                if isinstance(service, str) and service not in names:
                    names.append(service)
    return ready, waiting


def _records(services: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(name, info) for name, instances in services if isinstance(name, str) and isinstance(instances, list)
            for info in instances if isinstance(info, dict)]


def probe_for(url: str, context: zmq.asyncio.Context) -> Probe | None:
    """What the node asks about registrations, by the registry's URL scheme."""
    if url.startswith('hub://'):
        return HubProbe(url, context)
    if url.startswith('zookeeper://'):
        return ZookeeperProbe(url)
    return None


async def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


async def http_ok(url: str, timeout: float = 1.0) -> bool:
    """A GET answered with a status below 500. https: the certificate is not checked
    (as Kubernetes' probes: the process answering is what counts, not who signed it)."""
    parts = urlsplit(url)
    path = (parts.path or '/') + ('?' + parts.query if parts.query else '')
    secure = parts.scheme == 'https'
    try:
        port = parts.port or (443 if secure else 80)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            parts.hostname or '127.0.0.1', port, ssl=_unchecked() if secure else None), timeout)
    except (OSError, ValueError, asyncio.TimeoutError):  # ValueError: a port out of range
        return False
    try:
        writer.write(('GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' % (path, parts.netloc)).encode())
        status = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, ValueError, asyncio.TimeoutError):  # ValueError: a first line past 64 KiB
        return False
    finally:
        writer.close()
    fields = status.split()
    return len(fields) >= 2 and fields[1].isdigit() and int(fields[1]) < 500


def _unchecked() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick)."""
    import socket
    with socket.socket() as probe:
        probe.bind(('0.0.0.0', 0))
        return probe.getsockname()[1]


def tcp_target(target: str | int) -> tuple[str, int]:
    if isinstance(target, int):
        return '127.0.0.1', target
    host, _, port = str(target).rpartition(':')
    return host or '127.0.0.1', int(port)
