"""The hardening as a user meets it, with real processes: a hub that survives the frame
that used to kill it, and an instance started with --registry alone whose class-level
proxy reaches the cluster."""
from __future__ import annotations

import msgpack
import pytest

from conftest import free_port, output, wait_until
from fannode.core import wire
from fannode.hub.client import hub_endpoint
from rpc_helpers import Raw

pytestmark = pytest.mark.e2e


def test_a_small_frame_of_nested_sets_no_longer_kills_the_hub(cluster):
    hub = cluster.start_hub()
    body = msgpack.packb([])
    for _ in range(300):
        body = msgpack.packb([msgpack.ExtType(8, body)])
    frame = msgpack.packb([1, wire.REQ, 7, 'hub.ping', '', '', 0, {}, msgpack.ExtType(7, body)])
    assert len(frame) < 1500
    sock = Raw(hub_endpoint(cluster.url))
    try:
        sock.send(frame)
        reply = sock.recv(timeout=5)
        assert reply is not None, 'no answer; the hub exited with %s' % hub.poll()
        assert (reply.type, reply.id, reply.body) == (wire.NACK, 7, {
            'code': 'bad_request',
            'message': 'cannot decode message: sets nested more than 32 deep ($FANNODE_MAX_DEPTH)'})
        assert sock.request('hub.ping', {}).type == wire.REP
    finally:
        sock.close()
    assert hub.poll() is None


RELAY = '''
import fannode


class Relay(fannode.Interface):
    greeting = fannode.proxy('Greeting')  # at import: before `fannode instance` has read --registry

    @fannode.rpc()
    def relay(self, name):
        return self.greeting.greet(name=name)
'''


def test_a_class_level_proxy_follows_the_registry_flag(cluster):
    cluster.start_hub()
    cluster.start_instance()
    (cluster.tmp_path / 'relay.py').write_text(RELAY)
    (cluster.tmp_path / 'relay.yml').write_text('interfaces:\n  Relay:\n    class: relay:Relay\n')
    # The environment points elsewhere: only the flag says where the cluster is.
    relay = cluster.spawn('instance', '--config', 'relay.yml', '--registry', cluster.url, name='relay',
                          env={'FANNODE_REGISTRY': 'hub://127.0.0.1:%d' % free_port()})
    wait_until(lambda: 'serving' in output(relay) or relay.poll() is not None, message='the relay to serve')
    result = cluster.run('request', 'Relay.relay', '{"name": "Ann"}')
    assert (result.returncode, result.stdout.strip()) == (0, 'Hi, Ann!'), result.stderr + output(relay)
