"""Trace ids and log records end to end: `fannode tail` and `fannode trace` on a real
node (records read from the children's stderr) and on instances run by hand (records
shipped by the instances themselves)."""
from __future__ import annotations

import json
import re
import subprocess
import urllib.request

import pytest

from conftest import FANNODE, ROOT, output, wait_until
from test_node import Node, workshop

pytestmark = pytest.mark.e2e

TRACE = re.compile(r'\[([0-9a-f]{8})\]')


def greet(port: int, name: str) -> str:
    with urllib.request.urlopen('http://127.0.0.1:%d/greet?name=%s' % (port, name), timeout=10) as response:
        assert response.read() == ('Hi, %s!' % name).encode()
        return response.headers['X-Trace-Id']


class Tail:
    """A running `fannode tail`, its output read as it comes."""

    def __init__(self, node: Node, *args: str):
        self.path = node.dir / ('tail-%d.log' % id(self))
        self.file = open(self.path, 'w+')
        self.proc = subprocess.Popen([*FANNODE, 'tail', *args], cwd=node.dir, env=node.env, stdout=self.file,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines()

    def wait_for(self, predicate, message: str, timeout: float = 15.0) -> list[str]:
        def seen():
            assert self.proc.poll() is None, 'fannode tail exited:\n' + self.path.read_text()
            return predicate(self.lines())
        wait_until(seen, timeout, message=message)
        return self.lines()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.file.close()


CHATTER = '  chatter:\n    command: sh -c \'echo chatter says hello; exec sleep 600\'\n'


@pytest.fixture(scope='module')
def small_node(tmp_path_factory):
    """One node for the module (they start in seconds, but not in no time)."""
    node = Node(tmp_path_factory.mktemp('observability'))
    node.write(workshop(node.hub, node.web_port, greeting=2, listen=2, web=1, extra=CHATTER))
    node.up()
    try:
        node.wait_for('cluster ready', 60)
        node.remember_children()
        yield node
    finally:
        node.stop()


@pytest.fixture
def tails():
    started: list[Tail] = []
    yield started
    for tail in started:
        tail.stop()


def test_one_requests_trace_id_is_in_web_greeting_and_listen_lines_and_trace_shows_its_path(small_node, tails):
    node = small_node
    tail = Tail(node, '--lines', '0')
    tails.append(tail)
    tail.wait_for(lambda lines: any('following' in line for line in lines), 'tail to start')
    trace_id = greet(node.web_port, 'Joe')
    mine = tail.wait_for(
        lambda lines: sum(trace_id[:8] in line and ('Saying hi to Joe' in line or 'Somebody greeted Joe' in line
                                                    or 'GET /greet?name=Joe 200' in line) for line in lines) == 3,
        'the Web, Greeting and Listen lines of trace %s' % trace_id)
    by_service = {line.split()[1] for line in mine if trace_id[:8] in line}
    assert {'Web', 'Greeting', 'Listen'} <= by_service, mine

    result = node.cli('trace', trace_id)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith('trace %s — 3 span(s), 3 service(s)' % trace_id), text
    # parents above children: the HTTP request, the call it made, the event that call emitted
    order = [text.index(s) for s in ('http  GET /greet', 'rpc   Greeting.greet', 'event Listen.on_greeted')]
    assert order == sorted(order), text
    assert re.search(r'Greeting\.greet\s+Greeting \w{8}\s+[\d.]+ ms\s+ok', text), text
    assert 'Saying hi to Joe' in text and 'Somebody greeted Joe' in text

    # the first 8 digits are enough, and --json gives the records themselves
    result = node.cli('trace', trace_id[:8], '--json')
    records = json.loads(result.stdout)
    spans = [r for r in records if r['kind'] == 'span']
    assert sorted(s['name'] for s in spans) == ['GET /greet', 'Greeting.greet', 'Listen.on_greeted']
    parent = {s['name']: s['parent'] for s in spans}
    span = {s['name']: s['span'] for s in spans}
    assert parent['Greeting.greet'] == span['GET /greet'] and parent['Listen.on_greeted'] == span['Greeting.greet']
    assert all(r['trace'] == trace_id and r['pid'] and r['host'] for r in records)


def test_tail_filters_by_service_level_and_trace_and_shows_other_commands_output(small_node):
    node = small_node
    first, second = greet(node.web_port, 'Ann'), greet(node.web_port, 'Bob')

    def tail_json(*args: str) -> list[dict]:
        result = node.cli('tail', '--no-follow', '--json', '-n', '500', *args)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    wait_until(lambda: any('Somebody greeted Bob' in r['msg'] for r in tail_json('listen')), message='Bob in Listen')
    assert {r['service'] for r in tail_json('greeting')} == {'Greeting'}  # names match in any case
    ann = tail_json('--trace', first)
    assert {r['service'] for r in ann} == {'Web', 'Greeting', 'Listen'} and all(r['trace'] == first for r in ann)
    assert not any(second in r['trace'] for r in ann)
    assert all(r['level'] in ('WARNING', 'ERROR', 'CRITICAL') for r in tail_json('-l', 'warning'))
    # a command that is not a fannode instance: its lines are records too
    chatter = tail_json('chatter')
    assert [r['msg'] for r in chatter] == ['chatter says hello'] and chatter[0]['instance'] == 'chatter.1'


def test_bad_input_is_one_line(small_node):
    node = small_node
    result = node.cli('trace', 'feedfacecafe')
    assert result.returncode != 0 and result.stderr.count('\n') == 1 and 'no records of trace feedfacecafe' in result.stderr
    result = node.cli('tail', '-n', '-1')
    assert result.returncode != 0 and '--lines' in result.stderr and 'Traceback' not in result.stderr


def test_tail_follows_instances_that_start_after_it(small_node, tails):
    node = small_node
    tail = Tail(node, 'Greeting', '--lines', '0')
    tails.append(tail)
    tail.wait_for(lambda lines: any('following' in line for line in lines), 'tail to start')
    node.write(workshop(node.hub, node.web_port, greeting=3, listen=2, web=1, extra=CHATTER))
    lines = tail.wait_for(lambda lines: any('serving Greeting at' in line for line in lines),
                          'the new Greeting instance in tail')
    assert all(line.split()[1] == 'Greeting' for line in lines if 'following' not in line), lines


def test_instances_run_by_hand_ship_their_own_records(cluster):
    cluster.start_hub()
    env = {'PYTHONPATH': '%s:%s' % (ROOT / 'services', ROOT)}
    for config in ('greeting.yml', 'listen.yml'):
        proc = cluster.spawn('instance', '--config', str(ROOT / 'conf' / config), env=env, name='instance')
        wait_until(lambda: 'serving' in output(proc), message='%s to serve' % config)
    result = cluster.run('request', 'Greeting.greet', '{"name": "Joe"}', '--trace-id', 'cafe0000cafe0000')
    assert result.stdout.strip() == 'Hi, Joe!'
    # the instance's own terminal shows the printed line with its trace id
    wait_until(lambda: '[cafe0000cafe0000] Saying hi to Joe' in output(cluster.procs[1]), message='the print')

    def records() -> list[dict]:
        result = cluster.run('tail', '--no-follow', '--json', '--trace', 'cafe0000')
        return [json.loads(line) for line in result.stdout.splitlines()]
    found = wait_until(lambda: len(records()) == 2 and records(), message='two records of the trace')
    assert {(r['service'], r['msg']) for r in found} == {('Greeting', 'Saying hi to Joe'),
                                                         ('Listen', 'Somebody greeted Joe')}
    assert {r['logger'] for r in found} == {'print'}
