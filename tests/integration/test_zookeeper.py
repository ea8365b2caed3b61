"""Discovery on a real ZooKeeper: session loss, server restarts, the CLI and `fannode up`, all
with the same services as on the hub. Registration, lookups and watches, as every backend
keeps them, are checked on ZooKeeper too, by tests/contracts/test_registry_contract.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kazoo.client import KazooState

from fannode.runtime.container import ServiceContainer
from fannode.core.config import load_config
from fannode.discovery import get_registry
from fannode.calls.client import RpcClient
from fannode.testing import wait_until

ROOT = Path(__file__).resolve().parents[2]
FANNODE = [sys.executable, '-m', 'fannode.cli']


@pytest.fixture
def url(zookeeper):
    return '%s/test-%s' % (zookeeper.url, uuid.uuid4().hex[:8])  # a prefix of this test's own


@pytest.fixture
def start(url):
    started = []

    def start_one(greeting='Hi'):
        config = load_config(ROOT / 'tests' / 'conf' / 'demo.yml', env={'GREETING': greeting})
        container = ServiceContainer(config, url, events='local://zk-%s' % url[-8:])
        container.start()
        started.append(container)
        return container
    yield start_one
    for c in started:
        c.stop(timeout=0)


def test_calls_are_balanced_over_instances_found_in_zookeeper(url, start):
    start('Hi'), start('Hello')
    client = RpcClient(get_registry(url))
    try:
        answers = {client.proxy('Greeting').greet(name='Zed') for _ in range(40)}
        assert answers == {'Hi, Zed!', 'Hello, Zed!'}
    finally:
        client.close()
        client.registry.close()


def test_an_expired_session_registers_again_without_node_exists_errors(url, start):
    container = start()
    zk = container.registry.zk
    # What a laptop's sleep does: the server expires the session while the client is away.
    # A second client on the same session, closed, makes ZooKeeper expire it now.
    from kazoo.client import KazooClient
    session_id, password = zk.client_id
    from fannode.discovery.zookeeper import parse_url
    twin = KazooClient(hosts=parse_url(url)[0], client_id=(session_id, password),
                       handler=type(zk.handler)())
    twin.start(timeout=5)
    twin.stop()
    twin.close()
    registry = get_registry(url)
    try:
        wait_until(lambda: (zk.client_id or (session_id,))[0] != session_id, 15, 'a new session')
        wait_until(lambda: [i.id for i in registry.services().get('Greeting', [])] == [container.id], 10,
                 'the instance registered again')
    finally:
        registry.close()


def test_a_zookeeper_restart_leaves_every_instance_discoverable(start_server, provision_cli):
    with start_server('zookeeper') as server:
        url = server.url + '/restart'
        config = load_config(ROOT / 'tests' / 'conf' / 'demo.yml')
        containers = [ServiceContainer(config, url, events='local://zk-restart') for _ in range(3)]
        for c in containers:
            c.start()
        try:
            assert provision_cli('stop', 'zookeeper', '--dir', str(server.dir)).returncode == 0
            wait_until(lambda: all(c.registry.zk.state != KazooState.CONNECTED for c in containers), 10,
                       'every instance to notice ZooKeeper is gone')
            started = provision_cli('start', 'zookeeper', '--port', str(server.port), '--dir', str(server.dir))
            assert started.returncode == 0, started.stdout + started.stderr
            back = time.monotonic()
            registry = get_registry(url)
            try:
                wait_until(lambda: len(registry.services().get('Greeting', [])) == 3, 10,
                         'all three instances after the restart')
                assert time.monotonic() - back < 10
            finally:
                registry.close()
        finally:
            for c in containers:
                c.stop(timeout=0)


@pytest.mark.parametrize('data', [b'[1, 2]', b'{"id": 5, "endpoint": "tcp://x:1", "services": ["Greeting"]}',
                                  b'{"id": "x", "endpoint": "tcp://x:1", "services": "Greeting"}',
                                  b'not json', b'\xff\xfe', b'[' * 100_000, b''])
def test_a_znode_that_is_not_an_instance_record_is_skipped_not_fatal(url, start, data, caplog):
    """Anything may write under the services path (zkCli by hand, another program): a
    lookup skips what is not a record, with a warning, and finds the instances there."""
    container = start()
    registry = get_registry(url)
    try:
        registry.zk.create('%s/services/Greeting/junk' % registry.prefix, data, makepath=True)
        found = wait_until(lambda: registry.lookup('Greeting'), 10, 'the real instance')
        assert [i.id for i in found] == [container.id]
        assert [i.id for i in registry.services()['Greeting']] == [container.id]
        assert any('ignoring %s/services/Greeting/junk: not an instance record' % registry.prefix in r.getMessage()
                   for r in caplog.records)
    finally:
        registry.close()


def test_a_config_value_set_by_hand_that_is_not_json_reads_as_text(url):
    """zkCli writes whatever it is given; JSON nested too deep for Python reads as text too."""
    from fannode.sharedconfig import get_shared_config
    config = get_shared_config(url)
    try:
        deep = b'[' * 100_000
        config.zk.create(config.root + '/greeting.deep', deep, makepath=True)
        assert config.get('greeting.deep') == deep.decode()
    finally:
        config.close()


def test_an_unreachable_zookeeper_is_a_one_line_error():
    result = subprocess.run([*FANNODE, 'discover', '--registry', 'zookeeper://127.0.0.1:1/x'],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 3 and 'Traceback' not in result.stderr  # unavailable
    assert result.stderr.strip() == 'error: cannot reach ZooKeeper at 127.0.0.1:1 within 5s: is it running?'


def test_fannode_up_runs_the_workshop_on_zookeeper_and_rabbitmq(url, rabbitmq, tmp_path):
    """The workshop node.yml with `registry: zookeeper://...` and `events: amqp://...`:
    the same counts, answers and events as on the hub, and no hub at all."""
    import socket
    events = rabbitmq.url
    text = (ROOT / 'node.yml').read_text()
    text = text.replace('events: hub', 'events: %s' % events, 1)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        web_port = s.getsockname()[1]
    (tmp_path / 'node.yml').write_text(text)
    for name in ('services', 'conf'):
        (tmp_path / name).symlink_to(ROOT / name)
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=str(tmp_path), XDG_STATE_HOME=str(tmp_path),
               FANNODE_REGISTRY=url, FANNODE_EVENTS=events, WEB_PORT=str(web_port))  # node.yml reads them
    log = open(tmp_path / 'up.log', 'w+')
    node = subprocess.Popen([*FANNODE, 'up'], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)

    def cli(*args):
        return subprocess.run([*FANNODE, *args, '--registry', url], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: 'cluster ready' in (tmp_path / 'up.log').read_text() or node.poll() is not None, 60,
                 'cluster ready')
        assert node.poll() is None, (tmp_path / 'up.log').read_text()
        assert cli('discover').stdout == 'Greeting [3]\nListen [4]\nWeb [2]\n'
        assert cli('request', 'Greeting.greet', '{"name": "Zoe"}').stdout == 'Hi, Zoe!\n'
        wait_until(lambda: 'Somebody greeted Zoe' in (tmp_path / 'up.log').read_text(), 10, 'Listen to print')
        out = (tmp_path / 'up.log').read_text()
        assert out.count('Somebody greeted Zoe') == 1  # once per service, not once per instance
        # no hub on ZooKeeper and RabbitMQ: the node's hub block is a log hub only
        assert 'hub.1    │ log hub listening at tcp://' in out and 'hub listening at hub://' not in out
        # an event from the CLI, straight to RabbitMQ, and a live subscriber
        sub_log = open(tmp_path / 'subscribe.log', 'w+')
        sub = subprocess.Popen([*FANNODE, 'subscribe', 'greeted', '--events', events], cwd=tmp_path, env=env,
                               stdout=sub_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_until(lambda: 'listening for greeted' in (tmp_path / 'subscribe.log').read_text(), 20,
                     'the subscriber to have its queue')
            emitted = subprocess.run([*FANNODE, 'emit', 'greeted', '{"name": "Eve"}', '--events', events],
                                     cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
            assert emitted.returncode == 0, emitted.stderr
            wait_until(lambda: (tmp_path / 'up.log').read_text().count('Somebody greeted Eve') == 1, 10,
                     'Listen to hear the emitted event')
            wait_until(lambda: 'Eve' in (tmp_path / 'subscribe.log').read_text(), 10, 'the subscriber to print it')
        finally:
            sub.terminate()
            sub.wait(10)
            sub_log.close()
        import urllib.request
        with urllib.request.urlopen('http://127.0.0.1:%d/greet?name=zed' % web_port, timeout=10) as r:
            assert r.read() == b'Hi, zed!'
    finally:
        node.send_signal(signal.SIGINT)
        try:
            assert node.wait(30) == 0
        finally:
            if node.poll() is None:
                node.kill()
            log.close()
