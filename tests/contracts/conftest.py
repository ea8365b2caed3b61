"""Every backend of a kind, one test run per scheme, each test with fresh clients of its own.

`registry`, `events` and `shared_config` are `Backend`s: `.make()` opens another client of
this test's own namespace (a fresh in-process hub, a fresh ZooKeeper prefix, fresh queue
names and event types on RabbitMQ), and every client is closed after the test.

ZooKeeper and RabbitMQ are the session's servers from tests/integration/conftest.py (loaded
here, so running tests/contracts alone starts them too): where they are not installed those
runs skip, and fail under CI=true, as the integration tests do.
"""
from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from typing import Any, Callable

import pika
import pika.exceptions
import pytest

from fannode.core import serial
from fannode.discovery import get_registry
from fannode.events import get_events
from fannode.events.amqp import DEAD, EXCHANGE
from fannode.events.local import LocalEvents
from fannode.exceptions import RegistryUnavailable
from fannode.hub.client import HubLink
from fannode.hub.server import Hub
from fannode.sharedconfig import get_shared_config

INTEGRATION = Path(__file__).resolve().parents[1] / 'integration' / 'conftest.py'


def _integration_conftest() -> Any:
    name = 'fannode_integration_conftest'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, INTEGRATION)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: its dataclass looks itself up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def pytest_configure(config):
    _integration_conftest().configure(config)


class Backend:
    """Clients of one backend for one test. `make()` opens one more; `close(client)` ends
    one early (the rest are closed after the test)."""

    def __init__(self, request, scheme: str, url: str, open: Callable[[str], Any],
                 close: Callable[[Any], None]):
        self.node = request.node
        self.scheme = scheme
        self.url = url
        self._open = open
        self._close = close
        self.made: list[Any] = []

    def make(self) -> Any:
        client = self._open(self.url)
        self.made.append(client)
        return client

    def close(self, client: Any) -> None:
        self.made.remove(client)
        self._close(client)

    def known_gap(self, scheme: str, reason: str) -> None:
        """This backend breaks the promise under test (a bug of its own, reported, not fixed
        here): expected to fail, and a failure when it passes, so the mark goes with the fix."""
        if self.scheme == scheme:
            self.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))

    def close_all(self) -> None:
        while self.made:
            self.close(self.made[-1])


def start_hub(tmp_path: Path) -> Hub:
    """A hub in this process on a free port, with a journal (where it keeps dead letters)."""
    port = _integration_conftest().free_port()
    hub = Hub(journal=str(tmp_path / 'hub.sqlite3'))
    hub.bind('127.0.0.1', port)
    hub.start()
    hub.url = 'hub://127.0.0.1:%d' % port
    return hub


def namespace() -> str:
    return 'c' + uuid.uuid4().hex[:10]


@pytest.fixture
def hub(tmp_path):
    hub = start_hub(tmp_path)
    yield hub
    hub.stop()


def _zookeeper_url(request) -> str:
    return '%s/%s' % (request.getfixturevalue('zookeeper').url, namespace())


def _drop_zookeeper_prefix(url: str) -> None:
    from fannode.discovery.zookeeper import connect
    zk, prefix = connect(url)
    try:
        zk.delete(prefix, recursive=True)
    finally:
        zk.stop()
        zk.close()


def _keyed_by_registry(request, factory):
    """A registry or shared-config backend of the scheme `request` asks for: both are kept
    where the registry is, so both live on local, the hub and ZooKeeper."""
    scheme = request.param
    if scheme == 'local':
        url = 'local://%s' % namespace()
    elif scheme == 'hub':
        url = request.getfixturevalue('hub').url
    else:
        url = _zookeeper_url(request)
    backend = Backend(request, scheme, url, factory, lambda client: client.close())
    yield backend
    backend.close_all()
    if scheme == 'zookeeper':
        _drop_zookeeper_prefix(url)


@pytest.fixture(params=['local', 'hub', 'zookeeper'])
def registry(request):
    yield from _keyed_by_registry(request, get_registry)


@pytest.fixture(params=['local', 'hub', 'zookeeper'])
def shared_config(request):
    yield from _keyed_by_registry(request, get_shared_config)


class EventsBackend(Backend):
    """Event types and queue names of this test's own (`.type('tick')`, `.queue('q')`): on
    a shared RabbitMQ, durable queues and bindings of other tests never see them.
    `publish_raw(data)` publishes a message as a hostile emitter would, unchecked."""

    def __init__(self, request, scheme: str, url: str, dead_letters: Callable[[str], list[dict]],
                 publish_raw: Callable[..., None]):
        super().__init__(request, scheme, url, get_events, lambda client: client.close(timeout=1))
        self.ns = namespace()
        self.queues: list[str] = []
        self._dead_letters = dead_letters
        self.publish_raw = publish_raw

    def type(self, name: str) -> str:
        return '%s.%s' % (self.ns, name)

    def queue(self, name: str) -> str:
        self.queues.append('%s.%s' % (self.ns, name))
        return self.queues[-1]

    def dead_letters(self, queue: str) -> list[dict]:
        """What the broker keeps of the events dead-lettered from `queue`, oldest first:
        dicts of `id`, `type`, `attempts` and `reason`."""
        return self._dead_letters(queue)


def _dead(event: Any, attempts: Any, reason: Any) -> dict:
    """A dead letter as the tests compare them; a poison event may lack any part."""
    event = event if isinstance(event, dict) else {}
    headers = event.get('headers') if isinstance(event.get('headers'), dict) else {}
    return {'id': headers.get('id'), 'type': event.get('type'), 'attempts': attempts, 'reason': reason}


def _hub_dead_letters(hub: Hub) -> Callable[[str], list[dict]]:
    def read(queue: str) -> list[dict]:
        return [_dead(d['event'], d['attempts'], d['reason'])
                for d in reversed(hub.journal.dead_letters(10_000)) if d['queue'] == queue]
    return read


def _hub_publish_raw(hub: Hub) -> Callable[..., None]:
    """Through the verb, as a hostile client of the hub would; what the hub refuses there
    (a body that is not a map...) straight into its broker, as one its journal or an
    older hub could hold."""
    def publish(data: Any, key: str | None = None) -> None:
        link = HubLink(hub.url)
        try:
            link.call('publish', events=[{'event': data, 'delay': 0}])
        except RegistryUnavailable:
            hub.broker.publish(data)
        finally:
            link.close()
    return publish


def _local_dead_letters(url: str) -> Callable[[str], list[dict]]:
    def read(queue: str) -> list[dict]:
        client = LocalEvents(url)
        try:
            return [_dead(d['event'], d['attempts'], d['reason']) for d in client.dead_letters() if d['queue'] == queue]
        finally:
            client.close()
    return read


def _local_publish_raw(url: str) -> Callable[..., None]:
    def publish(data: Any, key: str | None = None) -> None:
        client = LocalEvents(url)
        try:
            client.broker.publish(data)
        finally:
            client.close()
    return publish


def _amqp_publish_raw(url: str) -> Callable[..., None]:
    """`data` encoded (bytes as they are), with its type (or `key`) as routing key and no
    properties at all, as a plain AMQP client may publish."""
    def publish(data: Any, key: str | None = None) -> None:
        body = data if isinstance(data, bytes) else serial.dumps(data)
        if key is None:
            key = data.get('type') if isinstance(data, dict) else None
        conn = pika.BlockingConnection(pika.URLParameters(url))
        try:
            conn.channel().basic_publish(EXCHANGE, key, body)
        finally:
            conn.close()
    return publish


def _amqp_dead_letters(url: str) -> Callable[[str], list[dict]]:
    kept: list[dict] = []  # read from fannode.dead once: a later look must still see them

    def read(queue: str) -> list[dict]:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = conn.channel()
            while True:
                method, props, body = channel.basic_get(DEAD, auto_ack=True)
                if method is None:
                    break
                headers = props.headers or {}
                try:
                    event = serial.loads(body)
                except ValueError:
                    event = None
                kept.append(dict(_dead(event, headers.get('attempt'), headers.get('reason')),
                                 id=props.message_id, queue=headers.get('queue')))
        finally:
            conn.close()
        return [{k: v for k, v in d.items() if k != 'queue'} for d in kept if d['queue'] == queue]
    return read


def _delete_amqp_queues(url: str, queues: list[str]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        for queue in queues:
            channel.queue_delete(queue)
    except pika.exceptions.AMQPError:
        pass
    finally:
        if conn.is_open:
            conn.close()


@pytest.fixture(params=['local', 'hub', 'amqp'])
def events(request):
    scheme = request.param
    if scheme == 'local':
        url = 'local://%s' % namespace()
        backend = EventsBackend(request, scheme, url, _local_dead_letters(url), _local_publish_raw(url))
    elif scheme == 'hub':
        hub = request.getfixturevalue('hub')
        backend = EventsBackend(request, scheme, hub.url, _hub_dead_letters(hub), _hub_publish_raw(hub))
    else:
        url = request.getfixturevalue('rabbitmq').url
        backend = EventsBackend(request, scheme, url, _amqp_dead_letters(url), _amqp_publish_raw(url))
    yield backend
    backend.close_all()
    if scheme == 'amqp':
        _delete_amqp_queues(backend.url, backend.queues)
