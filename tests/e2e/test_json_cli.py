"""Every command that prints data prints JSON with --json, and every command exits with
the codes of docs/cli.md (0 ok, 1 error, 2 usage, 3 unavailable, 4 timeout). Against a
real node running the workshop's Greeting service and the hub."""
from __future__ import annotations

import json

import pytest

from conftest import ROOT, free_port
from test_node import Node

# The config cases build on each other (set, get, list, delete) on the module's one node:
# under `pytest -n` (--dist loadgroup) they must run on one worker, in order.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group('json_cli')]

TRACE = 'feedc0de' * 4


@pytest.fixture(scope='module')
def running(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp('json'))
    node.write(f'''registry: {node.hub}
env: {{PYTHONPATH: {ROOT / 'services'}}}
instances:
  greeting:
    command: fannode instance --config {ROOT / 'conf' / 'greeting.yml'}
    numprocesses: 2
  sleeper: sleep 600
''')
    try:  # stopped however it ends: a module fixture that fails is not torn down
        node.up()
        node.wait_for('cluster ready', 90)
        node.remember_children()
        # a traced call, for `trace` and `tail` below
        assert node.cli('request', 'Greeting.greet', '{"name": "Joe"}', '--trace-id', TRACE).returncode == 0
        yield node
    finally:
        node.stop()


def blocks(data):
    return {b['name']: b for b in data['blocks']}


# (arguments, what the parsed JSON must show); in this order, against one node
CASES = [
    (['ps'], lambda d: blocks(d)['greeting']['desired'] == 2 and len(blocks(d)['greeting']['processes']) == 2),
    (['discover'], lambda d: len(d['Greeting']) == 2 and {'id', 'pid', 'endpoint'} <= set(d['Greeting'][0])),
    (['inspect', 'Greeting'], lambda d: d['service'] == 'Greeting' and 'greet' in json.dumps(d['methods'])),
    (['request', 'Greeting.greet', '{"name": "Ann"}'], lambda d: d['reply'] == 'Hi, Ann!' and d['trace_id']),
    (['shard', 'Greeting', '7'], lambda d: d[0]['key'] == 7 and d[0]['instance']['id'] and d[0]['next']),
    (['change-loglevel', 'Greeting', 'INFO'], lambda d: d['instance']),  # one object per line: the first
    (['config', 'set', 'greeting.style', '"Hello"'], lambda d: d == {'key': 'greeting.style', 'value': 'Hello'}),
    (['config', 'get', 'greeting.style'], lambda d: d == 'Hello'),
    (['config', 'list', 'greeting.'], lambda d: d == {'greeting.style': 'Hello'}),
    (['config', 'delete', 'greeting.style'], lambda d: d == {'key': 'greeting.style', 'deleted': True}),
    (['config', str(ROOT / 'conf' / 'greeting.yml')], lambda d: d['interfaces']['Greeting']['class']),
    (['emit', 'greeted', '{"name": "Joe"}'], lambda d: d['type'] == 'greeted' and d['id'] and d['trace_id']),
    (['trace', TRACE, '--wait', '5'], lambda d: d and all(r['trace'] == TRACE for r in d)),
    (['tail', '--no-follow', '-n', '5'], lambda d: {'ts', 'service', 'level', 'msg'} <= set(d)),
    (['list'], lambda d: {'ps', 'scale', 'up'} <= {c['name'] for c in d}),
    (['up', '--check'], lambda d: d['ok'] is True and [b['name'] for b in d['blocks']] == ['greeting', 'sleeper']),
    (['scale', 'sleeper', '2'], lambda d: d == {'block': 'sleeper', 'from': 1, 'to': 2}),
    (['restart', 'sleeper'], lambda d: d == {'block': 'sleeper', 'restarted': True}),
    (['reload'], lambda d: d == {'applied': [], 'ignored': []}),
]


@pytest.mark.parametrize('args, check', CASES, ids=[' '.join(a[:2]) for a, _ in CASES])
def test_json_output_parses_and_has_the_fields(running, args, check):
    result = running.cli(*args, '--json', timeout=60)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]  # commands that stream print one object per line
    data = json.loads(result.stdout) if len(result.stdout.splitlines()) == 1 else json.loads(first)
    assert check(data), data


@pytest.mark.parametrize('args, code, kind, message', [
    (['ps'], 3, 'unavailable', 'no node is running for node.yml'),
    (['scale', 'greeting', '2'], 3, 'unavailable', 'no node is running for node.yml'),
    (['discover', '--registry', 'hub://127.0.0.1:%d' % free_port()], 3, 'unavailable', 'cannot reach the hub'),
    (['request', 'Greeting.greet', '{', '--registry', 'hub://127.0.0.1:1'], 2, 'usage', 'bad JSON body'),
    (['config', 'get', 'bad key'], 2, 'usage', "bad config key 'bad key'"),
])
def test_errors_exit_by_kind_and_print_json_with_json(tmp_path, args, code, kind, message):
    node = Node(tmp_path)  # nothing runs here: no node.yml, no hub
    plain = node.cli(*args)
    assert plain.returncode == code and plain.stdout == ''
    assert plain.stderr.count('\n') == 1 and plain.stderr.startswith('error: ') and 'Traceback' not in plain.stderr
    as_json = node.cli(*args, '--json')
    assert as_json.returncode == code and as_json.stderr == plain.stderr  # the line for people stays
    error = json.loads(as_json.stdout)['error']
    assert (error['type'], error['exit']) == (kind, code) and message in error['message'], error


def test_bad_flags_are_usage_errors(tmp_path):
    node = Node(tmp_path)
    for args in (['ps', '--nope'], ['scale', 'greeting', 'many'], ['nosuchcommand']):
        result = node.cli(*args)
        assert result.returncode == 2 and 'usage:' in result.stderr, (args, result.stderr)


def test_errors_against_the_running_node(running):
    result = running.cli('scale', 'nope', '1', '--json')
    assert result.returncode == 2
    assert json.loads(result.stdout)['error']['message'].startswith("no instance block 'nope'")
    result = running.cli('request', 'Nope.x', '--json')
    assert result.returncode == 3 and json.loads(result.stdout)['error']['exception'] == 'UnknownService'
