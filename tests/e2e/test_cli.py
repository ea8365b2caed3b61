"""The foundation, driven as a user drives it: `fannode hub`, `fannode instance`,
`fannode discover` and `fannode request` as real processes."""
from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from conftest import FANNODE, one_line_error, output, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def two(cluster):
    """A hub and two Greeting instances."""
    cluster.start_hub()
    cluster.instances = [cluster.start_instance(), cluster.start_instance()]
    wait_until(lambda: cluster.count('Greeting') == 2, message='two instances registered')
    return cluster


def whoami_many(cluster, n: int) -> list[int]:
    """`n` CLI calls of Greeting.whoami, run side by side; every one must succeed."""
    procs = [subprocess.Popen([*FANNODE, 'request', 'Greeting.whoami'], env=cluster.env,
                              cwd=cluster.tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(n)]
    outputs = [proc.communicate(timeout=60) for proc in procs]  # every pipe read, also after a failure
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    return [int(out) for out, _ in outputs]


def test_discover_shows_each_service_with_its_instance_count(two):
    result = two.run('discover')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'Greeting [2]'


def test_discover_instances_and_json_list_every_instance(two):
    pids = {p.pid for p in two.instances}
    table = two.run('discover', '--instances')
    assert table.returncode == 0
    for pid in pids:
        assert str(pid) in table.stdout
    found = json.loads(two.run('discover', '--json').stdout)
    assert {i['pid'] for i in found['Greeting']} == pids
    assert all(i['endpoint'].startswith('tcp://127.0.0.1:') for i in found['Greeting'])


def test_request_prints_the_reply(two):
    result = two.run('request', 'Greeting.greet', '{"name": "Joe"}')
    assert (result.returncode, result.stdout, result.stderr) == (0, 'Hi, Joe!\n', '')
    wait_until(lambda: any('Saying hi to Joe' in output(p) for p in two.instances),
               message="the service's print in its output")


def test_request_reads_the_body_from_stdin_and_prints_json(two):
    result = two.run('request', 'Greeting.echo', '-', '--json', input='{"value": {"a": [1, 2.5, null]}}')
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out['reply'] == {'a': [1, 2.5, None]}
    assert out['instance']['services'] == ['Greeting'] and out['duration_ms'] > 0 and len(out['trace_id']) == 32


def test_calls_are_spread_over_both_instances(two):
    pids = whoami_many(two, 20)
    assert set(pids) == {p.pid for p in two.instances}


def test_calls_keep_succeeding_after_an_instance_is_killed(two):
    victim, survivor = two.instances
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    # At once, before the hub has noticed: the client routes around the dead endpoint.
    assert set(whoami_many(two, 8)) == {survivor.pid}
    wait_until(lambda: two.count('Greeting') == 1, timeout=5, message='the dead instance to expire')
    assert two.run('discover').stdout.strip() == 'Greeting [1]'


def test_the_trace_id_given_reaches_the_service(two):
    result = two.run('request', 'Greeting.trace_id', '--trace-id', 'trace-123')
    assert result.stdout.strip() == 'trace-123'


def test_a_service_calls_another_through_proxy_with_the_same_trace_id(two):
    result = two.run('request', 'Greeting.relay', '{"service": "Greeting", "name": "Ann"}', '--json')
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)['reply']
    assert reply['reply'] == 'Hi, Ann!'
    assert reply['here'] == reply['there'] and len(reply['here']) == 32


def test_inspect_lists_methods_with_signatures_and_docs(two):
    result = two.run('inspect', 'Greeting')
    assert result.returncode == 0, result.stderr
    assert 'Greeting.greet(name)' in result.stdout
    assert 'Greet somebody by name.' in result.stdout
    assert 'not_exposed' not in result.stdout
    assert 'Greeting.ping' not in result.stdout
    assert 'Greeting.ping' in two.run('inspect', 'Greeting', '--builtins').stdout


def test_builtin_methods_answer_on_every_instance(two):
    assert two.run('request', 'Greeting.ping', '{"payload": "x"}').stdout == 'x\n'
    status = json.loads(two.run('request', 'Greeting.status', '--json').stdout)['reply']
    assert status['state'] == 'running' and status['pid'] in {p.pid for p in two.instances}
    pids = {p.pid for p in two.instances}
    wait_until(lambda: set(whoami_many(two, 4)) == pids, message='calls to reach both instances')
    metrics = json.loads(two.run('request', 'Greeting.get_metrics', '--json').stdout)['reply']
    assert metrics['process']['pid'] in pids and metrics['process']['rss'] > 0
    assert metrics['rpc']['Greeting.whoami']['calls'] >= 1
    assert metrics['rpc']['Greeting.whoami']['p99_ms'] > 0



# A generous --timeout: an error that came from waiting it out would take 10 s or more.
@pytest.mark.parametrize('args, code, message', [
    (['Nope.greet', '{}'], 3, "error: no instance of service 'Nope' is registered"),
    (['Greeting.nope', '{}'], 2, "error: Greeting has no method 'nope'"),
    (['Greeting.gret', '{}'], 2, "error: Greeting has no method 'gret' (did you mean 'greet'?)"),
    (['Greeting.greet', '{"name": '], 2, 'error: bad JSON body'),
    (['Greeting.greet', '[1, 2]'], 2, 'error: the body must be a JSON object of keyword arguments, got list'),
    (['Greeting.greet', '{"nam": "Joe"}'], 2,
     "error: Greeting.greet(name): unexpected argument 'nam'; missing argument 'name'"),
    (['Greeting.greet', '{"name": "a", "x": 1, "y": 2}'], 2,
     "error: Greeting.greet(name): unexpected arguments 'x', 'y'"),
    (['greet', '{}'], 2, "error: expected Service.method, got 'greet'"),
    (['Greeting.lookup', '{"key": "k"}'], 1, "error: Greeting.lookup raised KeyError: 'k'"),
    (['Greeting.fail'], 1, 'error: Greeting.fail raised ValueError: boom'),
])
def test_request_errors_are_one_line_and_immediate(two, args, code, message):
    started = time.monotonic()
    result = two.run('request', *args, '--timeout', '10')
    assert time.monotonic() - started < 5
    assert one_line_error(result, code).startswith(message)


def test_a_slow_reply_times_out_with_the_timeout_named(two):
    result = two.run('request', 'Greeting.slow', '{"seconds": 5}', '--timeout', '0.5')
    assert one_line_error(result, 4).startswith('error: Greeting.slow: no reply within 0.5s from tcp://127.0.0.1:')


def test_no_hub_is_one_line_that_says_how_to_start_one(cluster):
    # unavailable is 3 for every command: docs/cli.md
    for command, code in ((['discover'], 3), (['request', 'Greeting.greet', '{"name": "x"}'], 3)):
        line = one_line_error(cluster.run(*command), code)
        assert line.startswith('error: cannot reach the hub at %s' % cluster.url)
        assert '`fannode hub`' in line


def test_unknown_registry_scheme_names_the_url(cluster):
    line = one_line_error(cluster.run('discover', '--registry', 'zk://somewhere'), 2)
    assert line == "error: no registry backend for scheme 'zk' in 'zk://somewhere' (known: hub, local, zookeeper)"


@pytest.mark.parametrize('text, message', [
    (None, 'error: {path}: no such file'),
    ('interfaces:\n  Greeting: [1\n', 'error: {path}:3: bad YAML'),
    ('interfaces:\n  Greeting:\n    class: nosuchmodule:Greeting\n',
     "error: {path}:3: interfaces.Greeting.class: cannot import 'nosuchmodule:Greeting'"),
    ('interfaces:\n  Greeting:\n    klass: demo:Greeting\n',
     'error: {path}:2: interfaces.Greeting.class: missing: expected "class: module:ClassName" '
     "(is 'klass' a misspelling?)"),
    ('interfaces:\n  Greeting:\n    class: demo:Greeting\nrpc:\n  prot: 5\n',
     "error: {path}:5: rpc: unknown key 'prot' (expected one of: ip, pool_size, port, timeout, tracebacks); "
     "did you mean 'port'?"),
    ('interfaces:\n  Greeting:\n    class: demo:Greeting\nrpc:\n  port: "x"\n',
     'error: {path}:5: rpc.port:'),
    ('interfaces:\n  Greeting:\n    class: os:path\n',
     'error: {path}:3: interfaces.Greeting.class: os:path is not a fannode.Interface subclass'),
    ('interfaces: {}\n', 'error: {path}:1: interfaces: no interfaces configured'),
])
def test_bad_service_configs_are_one_line_errors(cluster, tmp_path, text, message):
    path = tmp_path / 'service.yml'
    if text is not None:
        path.write_text(text)
    cluster.start_hub()
    started = time.monotonic()
    result = cluster.run('instance', '--config', str(path))
    assert time.monotonic() - started < 5
    assert one_line_error(result, 2).startswith(message.format(path=path)), result.stderr


def test_config_prints_the_resolved_config(cluster):
    from conftest import TESTS
    cluster.env['GREETING'] = 'Hello'
    result = cluster.run('config', str(TESTS / 'conf' / 'demo.yml'), '--json')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)['interfaces']['Greeting'] == {
        'class': 'demo:Greeting', 'greeting': 'Hello', 'marker': None}


def test_environment_reaches_the_service_config(cluster):
    cluster.start_hub()
    cluster.start_instance(env={'GREETING': 'Moin'})
    assert cluster.run('request', 'Greeting.greet', '{"name": "Jo"}').stdout == 'Moin, Jo!\n'


def test_sigterm_unregisters_runs_the_hooks_and_exits_zero(cluster, tmp_path):
    marker = tmp_path / 'marker'
    cluster.start_hub()
    proc = cluster.start_instance(env={'MARKER': str(marker)})
    wait_until(lambda: cluster.count('Greeting') == 1)
    assert marker.read_text() == 'started\n'
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert marker.read_text() == 'started\nstopped\n'
    # Unregistered at once, not left to expire.
    result = cluster.run('discover')
    assert (result.returncode, result.stdout, result.stderr) == (0, '', 'no services registered\n')


def test_a_running_request_finishes_before_the_instance_stops(cluster):
    cluster.start_hub()
    proc = cluster.start_instance()
    call = subprocess.Popen([*FANNODE, 'request', 'Greeting.slow', '{"seconds": 1}'], env=cluster.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: json.loads(cluster.run('request', 'Greeting.status', '--json').stdout)['reply']['in_flight'],
               message='the slow call to be running')
    proc.send_signal(signal.SIGTERM)
    out, err = call.communicate(timeout=10)
    assert (call.returncode, out) == (0, '1\n'), err
    assert proc.wait(timeout=10) == 0


def test_instances_register_again_when_the_hub_restarts(two):
    two.hub.send_signal(signal.SIGKILL)
    two.hub.wait(timeout=10)
    two.start_hub()
    wait_until(lambda: two.count('Greeting') == 2, timeout=10, message='instances to re-register')
    assert two.run('request', 'Greeting.greet', '{"name": "Z"}').stdout == 'Hi, Z!\n'


def test_a_second_hub_on_the_same_port_is_a_clear_error(cluster):
    cluster.start_hub()
    line = one_line_error(cluster.run('hub'), 1)
    assert line.startswith('error: cannot listen on 127.0.0.1:')
    assert 'is a hub already running?' in line


def test_list_and_help(cluster):
    listed = cluster.run('list')
    assert listed.returncode == 0
    for name in ('config', 'discover', 'help', 'hub', 'inspect', 'instance', 'list', 'request'):
        assert name in listed.stdout
    helped = cluster.run('help', 'request')
    assert helped.returncode == 0 and "fannode request Greeting.greet" in helped.stdout
    line = one_line_error(cluster.run('help', 'nosuch'), 2)
    assert 'nosuch' in line


def test_the_readme_quick_start_works_as_written(cluster):
    """The README's steps with the repository's own services/ and conf/."""
    import urllib.request

    from conftest import ROOT, free_port
    web_port = free_port()  # the README uses 4080; a test must not depend on it being free
    cluster.env.update(PYTHONPATH=str(ROOT / 'services'), WEB_PORT=str(web_port))
    cluster.start_hub()
    procs = {}
    for name, ready in (('greeting', 'serving Greeting'), ('greeting', 'serving Greeting'),
                        ('listen', 'serving Listen'), ('web', 'serving Web')):
        proc = procs[name] = cluster.spawn('instance', '--config', str(ROOT / 'conf' / (name + '.yml')), name=name)
        wait_until(lambda: ready in output(proc) or proc.poll() is not None)
        assert proc.poll() is None, output(proc)
    assert cluster.run('discover').stdout == 'Greeting [2]\nListen [1]\nWeb [1]\n'
    result = cluster.run('request', 'Greeting.greet', '{"name": "Joe"}')
    assert (result.returncode, result.stdout) == (0, 'Hi, Joe!\n')
    wait_until(lambda: 'Somebody greeted Joe' in output(procs['listen']))
    with urllib.request.urlopen('http://127.0.0.1:%d/greet?name=joe' % web_port, timeout=10) as r:
        assert r.read() == b'Hi, joe!'
    assert 'About to greet joe' in output(procs['web'])
    wait_until(lambda: 'Somebody greeted joe' in output(procs['listen']))
