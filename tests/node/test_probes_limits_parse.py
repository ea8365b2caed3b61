"""node.yml's `liveness:` and `limits:` keys: what they read as, what changing them does,
and the one-line error for each bad value."""
import textwrap

import pytest

from fannode.exceptions import ConfigError
from fannode.node import limitwatch
from fannode.node.changes import diff
from fannode.node.livecheck import Liveness
from fannode.node.resources import Limits, parse_size
from fannode.node.topology import loads

SERVICE = 'fannode instance --config conf/greeting.yml'


def block(extra: str, command: str = SERVICE, sockets: str = ''):
    text = 'sockets: {web: {port: 8080}}\ninstances:\n  b:\n    command: %s\n%s%s' % (
        command, sockets, textwrap.indent(textwrap.dedent(extra), '    '))
    return loads(text, 'node.yml', '.', env={}).instances['b']


def error_of(extra: str, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        block(extra, **kwargs)
    message = str(info.value)
    assert '\n' not in message and message.startswith('node.yml:')
    return message


# ---------------------------------------------------------------- liveness

def test_a_service_instance_gets_an_rpc_ping_probe_by_default():
    assert block('').liveness == Liveness('rpc', 'ping', period=5.0, timeout=1.0, failures=3)


def test_other_commands_get_no_probe_by_default():
    assert block('', command='sleep 100').liveness is None


def test_liveness_false_turns_the_default_off():
    assert block('liveness: false\n').liveness is None


def test_a_service_may_tune_the_default_without_naming_the_kind():
    check = block('liveness: {period: 1, timeout: 0.5, failures: 2, initial_delay: 3}\n').liveness
    assert check == Liveness('rpc', 'ping', 1.0, 0.5, 2, 3.0)


@pytest.mark.parametrize('extra, kind, target', [
    ('liveness: {tcp: 6390}\n', 'tcp', 6390),
    ("liveness: {tcp: 'db:5432'}\n", 'tcp', 'db:5432'),
    ('liveness: {http: http://127.0.0.1:9000/_health}\n', 'http', 'http://127.0.0.1:9000/_health'),
    ("liveness: {exec: 'test -f /tmp/ok'}\n", 'exec', ('test', '-f', '/tmp/ok')),
    ('liveness: {exec: [pg_isready, -p, 5432]}\n', 'exec', ('pg_isready', '-p', '5432')),
])
def test_probe_kinds_on_plain_commands(extra, kind, target):
    check = block(extra, command='redis-server').liveness
    assert (check.kind, check.target) == (kind, target)


def test_an_http_path_uses_the_block_socket():
    check = block('liveness: {http: /_health}\n', command='web', sockets='    sockets: [web]\n').liveness
    assert (check.kind, check.target) == ('http', '/_health')


@pytest.mark.parametrize('extra, command, expected', [
    ('liveness: {rpc: ping}\n', 'redis-server', 'liveness.rpc: needs a service instance'),
    ('liveness: {rpc: status}\n', SERVICE, "liveness.rpc: expected 'ping'"),
    ('liveness: {period: 2}\n', 'redis-server', 'liveness: expected exactly one of: rpc, http, tcp, exec'),
    ('liveness: {tcp: 1, http: /x}\n', 'redis-server', 'expected exactly one of: rpc, http, tcp, exec (got http, tcp)'),
    ('liveness: true\n', 'redis-server', 'liveness: true needs a service instance'),
    ('liveness: {tcp: 70000}\n', 'redis-server', "liveness.tcp: expected a port 1..65535 or 'host:port'"),
    ('liveness: {http: /x}\n', 'redis-server', 'liveness.http: a path needs a socket'),
    ('liveness: {http: ftp://x}\n', 'redis-server', "liveness.http: expected an http:// URL or a '/path'"),
    ('liveness: {http: "http://h:99999/"}\n', 'redis-server', "liveness.http: expected a port 1..65535 in"),
    ('liveness: {http: "http://h:x/"}\n', 'redis-server', "liveness.http: expected a port 1..65535 in"),
    ('liveness: {http: "https:///x"}\n', 'redis-server', "liveness.http: expected a host in"),
    ("liveness: {exec: ''}\n", 'redis-server', 'liveness.exec: must not be empty'),
    ("liveness: {exec: 'a \"b'}\n", 'redis-server', 'liveness.exec: cannot split the command'),
    ('liveness: {period: 0}\n', SERVICE, 'liveness.period: expected a number of seconds >= 0.05, got 0'),
    ('liveness: {timeout: -1}\n', SERVICE, 'liveness.timeout: expected a number of seconds >= 0.01'),
    ('liveness: {period: 1, timeout: 2}\n', SERVICE, 'liveness.timeout: must not be longer than the period (1s)'),
    ('liveness: {failures: 0}\n', SERVICE, 'liveness.failures: expected a whole number >= 1, got 0'),
    ('liveness: {failures: many}\n', SERVICE, 'liveness.failures: expected'),
    ('liveness: {initial_delay: -1}\n', SERVICE, 'liveness.initial_delay: expected a number of seconds >= 0'),
    ('liveness: {periods: 1}\n', SERVICE, "unknown key 'periods'"),
    ('liveness: 5\n', SERVICE, 'instances.b.liveness: expected a mapping, got'),
])
def test_bad_liveness_is_one_line_naming_the_key(extra, command, expected):
    message = error_of(extra, command=command)
    assert expected in message and 'instances.b.liveness' in message


def test_changing_the_probe_applies_in_place():
    old = loads('instances:\n  b: {command: %s}\n' % SERVICE, 'node.yml', '.', env={})
    new = loads('instances:\n  b: {command: %s, liveness: {period: 1}}\n' % SERVICE, 'node.yml', '.', env={})
    changes = diff(old, new)
    assert changes.updated == ['b'] and changes.restarted == [] and 'liveness changed' in changes.describe()[0]


# ---------------------------------------------------------------- limits

@pytest.mark.parametrize('text, size', [
    (1048576, 1 << 20), ('256M', 256 << 20), ('1G', 1 << 30), ('512MiB', 512 << 20), ('64mb', 64 << 20),
    ('1.5G', 3 << 29), ('100k', 100 << 10), ('2048', 2048),
])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize('text', ['', 'lots', '12Q', '-1M', 0, True, 1.5, '1 G B'])
def test_bad_sizes(text):
    assert parse_size(text) is None


def test_limits_read():
    spec = block('limits: {memory: 256M, cpu: 0.5, pids: 64, nofile: 4096}\n', command='sleep 9')
    assert spec.limits == Limits(256 << 20, 0.5, 64, 4096)
    assert block('', command='sleep 9').limits.empty


@pytest.mark.parametrize('extra, expected', [
    ('limits: {memory: lots}\n', "limits.memory: expected a size such as 256M, 1G, 512MiB or bytes, got 'lots'"),
    ('limits: {memory: 100k}\n', 'limits.memory: expected at least 1M'),
    ('limits: {cpu: 0}\n', 'limits.cpu: expected a fraction of a core > 0'),
    ('limits: {cpu: half}\n', 'limits.cpu: expected'),
    ('limits: {pids: 0}\n', 'limits.pids: expected a whole number >= 1, got 0'),
    ('limits: {nofile: 3}\n', 'limits.nofile: expected a whole number from 16 to 1048576, got 3'),
    ('limits: {mem: 1G}\n', "unknown key 'mem'"),
    ('limits: 1G\n', 'instances.b.limits: expected a mapping'),
])
def test_bad_limits_are_one_line_naming_the_key(extra, expected):
    message = error_of(extra, command='sleep 9')
    assert expected in message and 'instances.b.limits' in message


def test_changing_limits_restarts_the_block():
    old = loads('instances:\n  b: {command: sleep 9}\n', 'node.yml', '.', env={})
    new = loads('instances:\n  b: {command: sleep 9, limits: {memory: 64M}}\n', 'node.yml', '.', env={})
    assert diff(old, new).restarted == ['b']


def test_what_ps_shows_of_limits():
    assert limitwatch.status(Limits()) is None
    shown = limitwatch.status(Limits(memory=64 << 20, cpu=0.5, nofile=100))
    assert shown['memory'] == 64 << 20 and shown['nofile'] == 100
    assert shown['mechanism'] in ('cgroup', 'rlimit+watchdog')
    if shown['mechanism'] != 'cgroup':
        assert shown['not_enforced'] == ['cpu']
    assert limitwatch.rlimits(Limits(nofile=100)) == {'nofile': 100}
    assert limitwatch.rlimits(Limits(memory=1 << 30)) == {}


def test_the_reason_a_group_over_its_limit_is_killed():
    limits = Limits(memory=64 << 20, pids=4)
    assert limitwatch.over(limits, 60 << 20, 2) is None
    assert limitwatch.over(limits, 80 << 20, 2) == 'killed: memory limit 64 MiB (rss 80 MiB)'
    assert limitwatch.over(limits, 1 << 20, 5) == 'killed: pids limit 4 (5 processes)'


def test_the_watchdog_samples_a_group_with_what_it_left_behind_and_no_other(monkeypatch):
    """`sh -c "(hog &); exec sleep"`: the hog is init's child, not the node's, and still
    counted in its group; the whole process table is read from /proc, not psutil objects."""
    import os
    import signal
    import subprocess

    import psutil

    from tests.conftest import wait_until

    def everything():
        raise AssertionError('a psutil object per process')
    monkeypatch.setattr(psutil, 'process_iter', everything)
    child = subprocess.Popen(['sh', '-c', '(sleep 30 &); exec sleep 31'], start_new_session=True)  # as circus
    try:
        def settled():
            # the subshell `( ... &)` is the test's descendant until it has forked the hog and
            # exited; until then the group's two may be the leader and that subshell
            if [p for p in psutil.Process().children(recursive=True) if p.pid != child.pid]:
                return None
            found = limitwatch.sample({child.pid})
            return found if found.get(child.pid, (0, 0))[1] == 2 else None
        found = wait_until(settled, message='the leader and its orphan in the group, the subshell gone')
        assert list(found) == [child.pid]
        assert found[child.pid][0] > 0
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
