"""`fannode request` as a user runs it against real instances: --address, --header,
--dump-headers, --json, load runs (-N/-C), bodies from files and stdin, exit codes."""
from __future__ import annotations

import json
import time

import pytest

from conftest import Cluster, free_port, one_line_error, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    """A hub, two Greeting instances and one Headers instance, shared by this module's tests."""
    c = Cluster(tmp_path_factory.mktemp('request'))
    try:
        c.start_hub()
        c.greetings = [c.start_instance(), c.start_instance()]
        c.start_instance('reqdemo.yml')
        wait_until(lambda: c.count('Greeting') == 2 and c.count('Headers') == 1, message='instances registered')
        yield c
    finally:
        c.stop()


def ok(result):
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def test_address_calls_exactly_that_instance(cluster):
    instances = json.loads(ok(cluster.run('discover', 'Greeting', '--json')))['Greeting']
    assert {i['pid'] for i in instances} == {p.pid for p in cluster.greetings}
    for instance in instances:
        for _ in range(3):
            assert ok(cluster.run('request', 'Greeting.whoami', '--address', instance['endpoint'])) \
                == '%d\n' % instance['pid']


def test_headers_reach_the_handler_and_are_not_forwarded_by_its_calls(cluster):
    args = ('--header', 'user=ann', '-H', 'tenant=a b=c')
    assert json.loads(ok(cluster.run('request', 'Headers.show', *args, '--json')))['reply'] == \
        {'user': 'ann', 'tenant': 'a b=c'}
    assert json.loads(ok(cluster.run('request', 'Headers.nested', *args, '--json')))['reply'] == \
        {'mine': {'user': 'ann', 'tenant': 'a b=c'}, 'nested': {}}
    assert json.loads(ok(cluster.run('request', 'Headers.show', '--json')))['reply'] == {}


def test_headers_reach_the_handler_through_address_too(cluster):
    endpoint = json.loads(ok(cluster.run('discover', 'Headers', '--json')))['Headers'][0]['endpoint']
    reply = ok(cluster.run('request', 'Headers.show', '-H', 'user=bob', '--address', endpoint, '--json'))
    assert json.loads(reply)['reply'] == {'user': 'bob'}


def test_json_has_reply_instance_duration_and_trace_id(cluster):
    out = json.loads(ok(cluster.run('request', 'Greeting.whoami', '--json', '--trace-id', 'trace-7')))
    assert set(out) == {'reply', 'instance', 'duration_ms', 'trace_id'}
    assert out['reply'] == out['instance']['pid'] and out['instance']['endpoint'].startswith('tcp://')
    assert out['duration_ms'] > 0 and out['trace_id'] == 'trace-7'


def test_dump_headers_prints_what_was_sent_and_who_answered_on_stderr(cluster):
    result = cluster.run('request', 'Greeting.greet', '{"name": "Jo"}', '-H', 'user=ann', '--dump-headers',
                         '--trace-id', 'trace-8')
    assert ok(result) == 'Hi, Jo!\n'
    lines = result.stderr.splitlines()
    assert lines[:2] == ['> Greeting.greet', '> user: ann']
    assert any(line.startswith('< instance: ') and '(pid ' in line for line in lines)
    assert any(line.startswith('< endpoint: tcp://127.0.0.1:') for line in lines)
    assert '< trace-id: trace-8' in lines and '< reply: str' in lines
    assert any(line.startswith('< duration: ') and line.endswith(' ms') for line in lines)


def test_a_load_run_prints_a_latency_summary(cluster):
    result = cluster.run('request', 'Greeting.whoami', '-N', '2000', '-C', '20', timeout=120)
    out = ok(result)
    header = out.splitlines()[0].split()
    assert header == ['requests', 'ok', 'errors', 'req/s', 'p50', 'p90', 'p99', 'max']
    assert out.splitlines()[1].split()[:3] == ['2000', '2000', '0']
    assert '2000 calls at concurrency 20' in out


def test_a_load_run_as_json_counts_errors_by_type_and_exits_with_their_code(cluster):
    summary = json.loads(ok(cluster.run('request', 'Greeting.whoami', '-N', '50', '-C', '5', '--json')))
    assert (summary['count'], summary['ok'], summary['errors']) == (50, 50, {})
    assert set(summary['latency_ms']) == {'p50', 'p90', 'p99', 'max'}
    failing = cluster.run('request', 'Greeting.fail', '-N', '10', '-C', '2', '--json')
    assert failing.returncode == 1
    assert json.loads(failing.stdout)['errors'] == {'ValueError': 10}


def test_body_from_a_file_and_from_stdin(cluster, tmp_path):
    body = tmp_path / 'body.json'
    body.write_text('{"name": "File"}')
    assert ok(cluster.run('request', 'Greeting.greet', '@%s' % body)) == 'Hi, File!\n'
    assert ok(cluster.run('request', 'Greeting.greet', '-', input='{"name": "Stdin"}')) == 'Hi, Stdin!\n'
    missing = tmp_path / 'nope.json'
    assert one_line_error(cluster.run('request', 'Greeting.greet', '@%s' % missing), 2) == \
        'error: body file %s: No such file or directory' % missing
    bad = tmp_path / 'bad.json'
    bad.write_text('{"name": ')
    assert one_line_error(cluster.run('request', 'Greeting.greet', '@%s' % bad), 2).startswith(
        'error: bad JSON body in %s' % bad)


@pytest.mark.parametrize('args, code, message', [
    (['Greeting.fail'], 1, 'error: Greeting.fail raised ValueError: boom'),
    (['Greeting.greet', '{"name": '], 2, 'error: bad JSON body'),
    (['Greeting.nope'], 2, "error: Greeting has no method 'nope'"),
    (['Greeting.greet', '{"nam": "Joe"}'], 2, "error: Greeting.greet(name): unexpected argument 'nam'"),
    (['Greeting.whoami', '--address', 'localhost:5000'], 2,
     "error: --address: expected tcp://HOST:PORT, got 'localhost:5000'"),
    (['Greeting.whoami', '--address', 'tcp://127.0.0.1:99999'], 2,
     "error: --address: expected tcp://HOST:PORT, got 'tcp://127.0.0.1:99999'"),
    (['Greeting.whoami', '-H', 'user'], 2, 'error: --header user: expected KEY=VALUE'),
    (['Greeting.whoami', '-H', 'user=a\x07b'], 2, 'error: --header: user: control characters are not allowed'),
    (['Greeting.whoami', '-N', '0'], 2, 'error: -N must be a count of calls above 0, got 0'),
    (['Greeting.whoami', '-N', '5', '-C', '0'], 2, 'error: -C must be 1 to 10000, got 0'),
    (['Nope.greet'], 3, "error: no instance of service 'Nope' is registered"),
    (['Greeting.slow', '{"seconds": 5}', '--timeout', '0.5'], 4, 'error: Greeting.slow: no reply within 0.5s'),
])
def test_each_error_kind_has_its_exit_code(cluster, args, code, message):
    assert one_line_error(cluster.run('request', *args), code).startswith(message)


def test_an_unreachable_address_or_registry_is_unavailable(cluster):
    address = 'tcp://127.0.0.1:%d' % free_port()
    started = time.monotonic()
    line = one_line_error(cluster.run('request', 'Greeting.whoami', '--address', address, '--timeout', '0.5'), 3)
    assert line.startswith('error: Greeting.whoami: cannot connect to %s' % address)
    assert time.monotonic() - started < 10
    registry = 'hub://127.0.0.1:%d' % free_port()
    line = one_line_error(cluster.run('request', 'Greeting.whoami', '--registry', registry), 3)
    assert line.startswith('error: cannot reach the hub at %s' % registry)


def test_a_versioned_subject_reaches_only_instances_of_that_version(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start_hub()
        one = c.start_instance('demo-versioned.yml', env={'VERSION': '1.4.2'})
        two = c.start_instance('demo-versioned.yml', env={'VERSION': '2.0.0'})
        wait_until(lambda: c.count('Greeting') == 2, 20, message='both versions registered')
        for subject, pid in (('Greeting@^2.whoami', two.pid), ('Greeting@1.4.whoami', one.pid),
                             ('Greeting@1.4.2.whoami', one.pid)):
            assert {json.loads(ok(c.run('request', subject, '--json')))['reply'] for _ in range(4)} == {pid}
        line = one_line_error(c.run('request', 'Greeting@^3.whoami'), 3)
        assert line.startswith('error: ') and '^3' in line and '1.4.2 ×1' in line and '2.0.0 ×1' in line
        assert 'not a valid range' in one_line_error(c.run('request', 'Greeting@^^1.whoami'), 2)
    finally:
        c.stop()
