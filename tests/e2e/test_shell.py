"""`fannode shell`, fed on stdin as a script would: locally with proxies, and attached
to a running instance's backdoor with --remote."""
from __future__ import annotations

import argparse
import json

import psutil
import pytest

from conftest import one_line_error, output, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def greeting(cluster):
    """A hub and two Greeting instances: the first with a backdoor, the second without."""
    cluster.start_hub()
    cluster.open = cluster.start_instance(env={'FANNODE_BACKDOOR': '1'})
    cluster.closed = cluster.start_instance()
    wait_until(lambda: cluster.count('Greeting') == 2, message='two instances registered')
    found = json.loads(cluster.run('discover', '--json').stdout)['Greeting']
    cluster.ids = {i['pid']: i['id'] for i in found}
    cluster.meta = {i['pid']: i['meta'] for i in found}
    return cluster


def test_the_local_shell_runs_piped_statements_with_proxies(greeting):
    script = ("print(proxy('Greeting').greet(name='Joe'))\n"
              "print(discover())\n"
              "event = emit('greeted', {'name': 'Ann'})\n"
              "print(len(event))\n"
              "for name in ['a', 'b']:\n"
              "    print(proxy('Greeting', timeout=2).greet(name=name))\n"
              "\n"
              "print(registry.url == client.registry.url)\n")
    result = greeting.run('shell', input=script)
    assert (result.returncode, result.stderr) == (0, '')
    assert result.stdout == "Hi, Joe!\n{'Greeting': 2}\n32\nHi, a!\nHi, b!\nTrue\n"


def test_a_failed_statement_is_one_line_and_the_exit_status_1(greeting):
    result = greeting.run('shell', input="proxy('Nope').x()\nprint('goes on')\n")
    assert result.returncode == 1
    assert result.stdout == 'goes on\n'
    assert result.stderr == "UnknownService: no instance of service 'Nope' is registered\n"


def test_the_shell_without_a_hub_is_one_line(cluster):
    result = cluster.run('shell', input='print(1)\n')
    assert one_line_error(result, 1).startswith('error: cannot reach the hub at %s' % cluster.url)


def test_the_backdoor_listens_on_loopback_only_when_asked(greeting):
    port = greeting.meta[greeting.open.pid]['backdoor']
    assert 'backdoor' not in greeting.meta[greeting.closed.pid]
    listening = [c.laddr for c in psutil.Process(greeting.open.pid).net_connections('tcp')
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    assert listening == [('127.0.0.1', port)]


def test_remote_runs_inside_the_instance(greeting):
    instance = greeting.ids[greeting.open.pid]
    script = ('import os\nprint(os.getpid(), container.id)\n'
              'print(len(container.interfaces), Greeting.greeting)\n')
    by_prefix = greeting.run('shell', '--remote', instance[:6], input=script)
    assert (by_prefix.returncode, by_prefix.stderr) == (0, '')
    assert by_prefix.stdout == '%d %s\n1 Hi\n' % (greeting.open.pid, instance)
    # Round-robin: some of the calls are served by this instance, while the statement
    # waits; what they print goes to the instance's output, not to the session.
    calls = greeting.run('shell', '--remote', instance[:8],
                         input="for _ in range(4):\n    print(proxy('Greeting').greet(name='Bo'))\n\n"
                               "1/0\nquit()\nprint('never')\n")
    assert calls.returncode == 0
    assert calls.stdout.startswith('Hi, Bo!\n' * 4 + 'Traceback')
    assert calls.stdout.endswith('ZeroDivisionError: division by zero\n')
    wait_until(lambda: 'Saying hi to Bo' in output(greeting.open), message="the instance's own print")
    # The session ended, the instance did not.
    assert greeting.run('request', 'Greeting.ping', '{"payload": "ok"}').stdout == 'ok\n'


def test_remote_by_service_name_needs_exactly_one_instance(greeting):
    error = one_line_error(greeting.run('shell', '--remote', 'Greeting'), 2)
    prefix = 'error: Greeting has 2 instances; name one: '
    assert error.startswith(prefix)
    assert set(error[len(prefix):].split(', ')) == {i[:8] for i in greeting.ids.values()}
    greeting.closed.kill()
    greeting.closed.wait(timeout=10)
    wait_until(lambda: greeting.count('Greeting') == 1, message='the killed instance to expire')
    result = greeting.run('shell', '--remote', 'Greeting', input='print(container.id)\n')
    assert result.stdout == greeting.ids[greeting.open.pid] + '\n'


def test_remote_refusals_are_one_line(greeting):
    closed = greeting.ids[greeting.closed.pid][:8]
    assert one_line_error(greeting.run('shell', '--remote', closed), 1) == (
        'error: instance %s has no backdoor: start it with FANNODE_BACKDOOR=1' % closed)
    assert one_line_error(greeting.run('shell', '--remote', 'zzz'), 1) == (
        "error: no instance or service 'zzz' (services: Greeting; `fannode discover --instances` "
        "lists the instance ids)")


def test_remote_refuses_an_instance_on_another_host():
    from fannode.cli.shell import ShellCommand
    from fannode.discovery import InstanceInfo
    from fannode.discovery.local import LocalRegistry
    from fannode.exceptions import FannodeError
    url = 'local://shell-elsewhere'
    registry = LocalRegistry(url)
    registry.register(InstanceInfo(id='abcdef12' * 4, endpoint='tcp://10.1.2.3:4000', services=['Far'],
                                   host='elsewhere', meta={'backdoor': 4001}))
    try:
        with pytest.raises(FannodeError) as e:
            ShellCommand().run(argparse.Namespace(remote='abcd', registry=url, events=None, plain=False))
    finally:
        registry.close()
    assert str(e.value) == ('instance abcdef12 runs on host elsewhere: its backdoor listens on '
                            '127.0.0.1 there only; run the shell on that host')
