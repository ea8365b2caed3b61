"""The gateway as a node.yml block on a socket the node owns: the workshop under
`fannode up`, driven by curl and by a bash script that uses nothing but curl."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, free_port, wait_until
from test_node import Node, workshop

pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).with_name('gateway_workshop.sh')


@pytest.fixture
def gateway_node(tmp_path):
    node = Node(tmp_path)
    port = free_port()
    node.gateway = 'http://127.0.0.1:%d' % port
    text = workshop(node.hub, node.web_port, greeting=1, listen=1, web=1, extra='''  gateway:
    command: fannode gateway --socket api
    sockets: [api]
    depends_on: [greeting]
''')
    text = text.replace('sockets:\n', 'sockets:\n  api: {host: 127.0.0.1, port: %d}\n' % port, 1)
    node.write(text)
    node.up()
    try:
        node.wait_for('cluster ready', 60)
        node.remember_children()
        yield node
    finally:
        node.stop()


def test_curl_through_the_gateway_block_under_fannode_up(gateway_node):
    node = gateway_node
    # "cluster ready" waits for what a block's ready check says: the gateway is ready when started
    wait_until(lambda: node.counts() == {'Gateway': 1, 'Greeting': 1, 'Listen': 1, 'Web': 1}, 30,
               message='every service registered')
    reply = subprocess.run(['curl', '-sSf', '-d', '{"name": "Zed"}', node.gateway + '/rpc/Greeting/greet'],
                           capture_output=True, text=True, timeout=20)
    assert reply.stdout == '"Hi, Zed!"', reply.stderr
    node.wait_for('Somebody greeted Zed')
    listed = subprocess.run(['curl', '-sSf', node.gateway + '/services'], capture_output=True, text=True, timeout=20)
    assert sorted(json.loads(listed.stdout)) == ['Gateway', 'Greeting', 'Listen', 'Web']
    # an event stream while `fannode emit` fires
    reader = subprocess.Popen(['curl', '-sS', '-N', '--max-time', '30', node.gateway + '/events/greeted'],
                              stdout=subprocess.PIPE)
    try:
        assert reader.stdout.readline() == b': subscribed to "greeted"\n'
        assert node.cli('emit', 'greeted', '{"name": "Streamed"}').returncode == 0
        seen = [reader.stdout.readline() for _ in range(4)]  # blank line, id, event, data
        assert seen[2] == b'event: greeted\n' and json.loads(seen[3][len(b'data: '):])['body'] == {'name': 'Streamed'}
    finally:
        reader.kill()
        reader.wait()
        reader.stdout.close()


def test_a_bash_client_completes_the_workshop_steps_through_the_gateway_alone(gateway_node):
    node = gateway_node
    result = subprocess.run(['bash', str(SCRIPT), node.gateway], capture_output=True, text=True, timeout=60,
                            env={'PATH': '/usr/bin:/bin'}, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['request: "Hi, Joe!"', 'emit: 202', 'done']
    node.wait_for('Somebody greeted Ann')
