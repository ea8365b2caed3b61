"""`fannode shell`, fed on stdin as a script would: locally with proxies, and attached
to a running instance's backdoor with --remote."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile

import psutil
import pytest

from conftest import in_thread, one_line_error, output, wait_until

pytestmark = pytest.mark.e2e
OTHER_UID = 65534  # nobody
SYSTEM_PYTHON = '/usr/bin/python3'  # one another user may run (the venv's may be under /root)
as_another_user = pytest.mark.skipif(os.getuid() != 0 or not os.access(SYSTEM_PYTHON, os.X_OK),
                                     reason='needs root, to run a process of another user')


@pytest.fixture
def runtime(cluster):
    """A runtime directory of the test's own, short enough for unix socket paths."""
    path = tempfile.mkdtemp(prefix='fn-')
    cluster.env['XDG_RUNTIME_DIR'] = path
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def greeting(cluster, runtime):
    """A hub and two Greeting instances: the first with a backdoor, the second without."""
    cluster.runtime = runtime
    cluster.start_hub()
    cluster.open = cluster.start_instance(env={'FANNODE_BACKDOOR': '1'})
    cluster.closed = cluster.start_instance()
    wait_until(lambda: cluster.count('Greeting') == 2, message='two instances registered')
    found = json.loads(cluster.run('discover', '--json').stdout)['Greeting']
    cluster.ids = {i['pid']: i['id'] for i in found}
    cluster.meta = {i['pid']: i['meta'] for i in found}
    cluster.endpoints = {i['pid']: i['endpoint'] for i in found}
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
    assert one_line_error(result, 3).startswith('error: cannot reach the hub at %s' % cluster.url)


def test_the_backdoor_is_a_private_unix_socket_only_when_asked(greeting):
    path = greeting.meta[greeting.open.pid]['backdoor']
    assert 'backdoor' not in greeting.meta[greeting.closed.pid]
    instance = greeting.ids[greeting.open.pid]
    assert path == os.path.join(greeting.runtime, 'fannode', 'backdoor-%s.sock' % instance[:12])
    assert stat.S_ISSOCK(os.lstat(path).st_mode) and stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(os.path.dirname(path)).st_mode) == 0o700
    process = psutil.Process(greeting.open.pid)
    assert [c.laddr for c in process.net_connections('unix') if c.laddr == path] == [path]
    tcp = {c.laddr.port for c in process.net_connections('tcp') if c.status == psutil.CONN_LISTEN}
    assert tcp == {int(greeting.endpoints[greeting.open.pid].rpartition(':')[2])}  # RPC only
    greeting.open.terminate()
    assert greeting.open.wait(timeout=15) == 0
    assert not os.path.lexists(path)  # gone with the instance


CONNECT = """
import socket, sys
where = sys.argv[1]  # a path; a port was what fannode registered before
s = socket.socket(socket.AF_INET if where.isdigit() else socket.AF_UNIX)
try:
    s.connect(('127.0.0.1', int(where)) if where.isdigit() else where)
except OSError as e:
    print('refused:', e.strerror)
    sys.exit(0)
try:
    s.sendall(b'#fannode-shell quiet\\nimport os\\nprint(os.getuid())\\n')
    s.shutdown(socket.SHUT_WR)
    answer = s.recv(100).decode().strip()
except OSError:
    answer = ''
print('ran code: ' + answer if answer else 'closed at once')
"""


@as_another_user
def test_a_process_of_another_user_cannot_reach_the_backdoor(greeting):
    """The report: a process of another uid ran code inside an instance running as root."""
    path = greeting.meta[greeting.open.pid]['backdoor']
    tried = subprocess.run([SYSTEM_PYTHON, '-c', CONNECT, str(path)], user=OTHER_UID, capture_output=True,
                           text=True, timeout=30, cwd='/')
    assert (tried.stdout, tried.stderr) == ('refused: Permission denied\n', '')
    # and the instance's user still can
    mine = subprocess.run([SYSTEM_PYTHON, '-c', CONNECT, str(path)], capture_output=True, text=True, timeout=30)
    assert mine.stdout == 'ran code: %d\n' % os.getuid()


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
    assert one_line_error(greeting.run('shell', '--remote', 'zzz'), 3) == (
        "error: no instance or service 'zzz' (services: Greeting; `fannode discover --instances` "
        "lists the instance ids)")


@as_another_user
def test_the_backdoor_closes_on_a_process_of_another_user_that_got_through(caplog):
    """Should the directory and the socket's mode let one through, its credentials do not."""
    from fannode.core.backdoor import Backdoor
    place = tempfile.mkdtemp(prefix='fn-')
    os.chmod(place, 0o755)
    door = Backdoor({}, 'hello', os.path.join(place, 'backdoor.sock'))
    door.start()
    try:
        os.chmod(door.path, 0o666)
        tried = in_thread(subprocess.run, [SYSTEM_PYTHON, '-c', CONNECT, door.path], user=OTHER_UID,
                          capture_output=True, text=True, timeout=30, cwd='/')
    finally:
        door.stop()
        shutil.rmtree(place, ignore_errors=True)
    assert (tried.stdout, tried.stderr) == ('closed at once\n', '')
    assert caplog.messages == ['backdoor: refused a connection from a process of uid %d' % OTHER_UID]


def remote(meta: dict, host: str, url: str) -> str:
    """What `fannode shell --remote` says of an instance registered with `meta` on `host`."""
    from fannode.cli.shell import ShellCommand
    from fannode.discovery import InstanceInfo
    from fannode.discovery.local import LocalRegistry
    from fannode.exceptions import FannodeError
    registry = LocalRegistry(url)
    registry.register(InstanceInfo(id='abcdef12' * 4, endpoint='tcp://10.1.2.3:4000', services=['Far'],
                                   host=host, meta=meta))
    try:
        with pytest.raises(FannodeError) as e:
            ShellCommand().run(argparse.Namespace(remote='abcd', registry=url, events=None, plain=False))
    finally:
        registry.close()
    return str(e.value)


def test_remote_refuses_an_instance_on_another_host():
    assert remote({'backdoor': '/run/user/1/fannode/backdoor-abcdef12abcd.sock'}, 'elsewhere',
                  'local://shell-elsewhere') == (
        'instance abcdef12 runs on host elsewhere: its backdoor is a unix socket there; run the shell '
        'on that host')


def test_remote_refuses_the_tcp_backdoor_of_an_older_instance():
    assert remote({'backdoor': 4001}, socket.gethostname(), 'local://shell-old') == (
        'instance abcdef12 has a TCP backdoor (port 4001), which this fannode no longer uses: restart '
        'the instance with this version')


SERVE = """
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
s.listen(1)
print('ready', flush=True)
s.accept()[0].recv(100)
"""


@as_another_user
def test_remote_sends_nothing_to_a_backdoor_another_user_serves(tmp_path):
    """Anyone may register in discovery: the shell checks who serves the socket it is sent to."""
    place = tempfile.mkdtemp(prefix='fn-')
    os.chmod(place, 0o777)
    path = os.path.join(place, 'backdoor.sock')
    fake = subprocess.Popen([SYSTEM_PYTHON, '-c', SERVE, path], user=OTHER_UID, stdout=subprocess.PIPE,
                            text=True, cwd='/')
    try:
        assert fake.stdout.readline() == 'ready\n'
        assert remote({'backdoor': path}, socket.gethostname(), 'local://shell-fake') == (
            'the backdoor of instance abcdef12 at %s is served by uid %d, not by you (uid 0): not '
            'sending it anything' % (path, OTHER_UID))
    finally:
        fake.kill()
        fake.wait(timeout=10)
        fake.stdout.close()
        shutil.rmtree(place, ignore_errors=True)
