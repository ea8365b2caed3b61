"""Two machines, one cluster: two `fannode up` nodes in separate network namespaces
joined by a veth pair, sharing one ZooKeeper and one RabbitMQ, both on host A.
Services on B call and hear services on A across the "network"."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fannode.testing import wait_until as _wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROVISION = ROOT / 'scripts' / 'provision'
A_IP, B_IP = '10.77.0.1', '10.77.0.2'


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, stdin=subprocess.DEVNULL)


@pytest.fixture(scope='module')
def hosts(provisioned):
    """Namespaces `a` and `b` with 10.77.0.1 and 10.77.0.2, or a skip saying why not."""
    if shutil.which('ip') is None:
        pytest.skip('no `ip` command (iproute2): cannot make network namespaces')
    tag = 'fn%d' % os.getpid()
    names = {'a': tag + 'a', 'b': tag + 'b'}
    made = sh('ip', 'netns', 'add', names['a'], check=False)
    if made.returncode != 0:
        pytest.skip('cannot create network namespaces here: %s' % made.stderr.strip())
    try:
        sh('ip', 'netns', 'add', names['b'])
        sh('ip', 'link', 'add', tag + 'va', 'type', 'veth', 'peer', 'name', tag + 'vb')
        for side, ip in (('a', A_IP), ('b', B_IP)):
            ns, dev = names[side], tag + 'v' + side
            sh('ip', 'link', 'set', dev, 'netns', ns)
            sh('ip', '-n', ns, 'addr', 'add', ip + '/24', 'dev', dev)
            sh('ip', '-n', ns, 'link', 'set', dev, 'up')
            sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
        yield names
    finally:
        for ns in names.values():
            sh('ip', 'netns', 'del', ns, check=False)  # takes its end of the veth pair along


def wait_until(predicate, timeout: float, message: str):
    return _wait_until(predicate, timeout, message, interval=0.1)  # each poll may run the CLI


class Host:
    def __init__(self, ns: str, ip: str, dir: Path):
        self.ns, self.ip, self.dir = ns, ip, dir
        self.procs: list[subprocess.Popen] = []
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=str(dir), XDG_STATE_HOME=str(dir))
        for key in ('FANNODE_REGISTRY', 'FANNODE_EVENTS'):
            self.env.pop(key, None)

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(['ip', 'netns', 'exec', self.ns, *argv], capture_output=True, text=True,
                              env=self.env, cwd=self.dir, timeout=timeout, stdin=subprocess.DEVNULL)

    def fannode(self, *args: str) -> subprocess.CompletedProcess:
        return self.run(sys.executable, '-m', 'fannode.cli', *args)

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.dir / (name + '.log'), 'w')
        # `ip netns exec` execs the command: the pid is fannode's own
        proc = subprocess.Popen(['ip', 'netns', 'exec', self.ns, sys.executable, '-m', 'fannode.cli', *args],
                                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.dir,
                                stdin=subprocess.DEVNULL)
        proc.log = log
        self.procs.append(proc)
        return proc

    def output(self, name: str) -> str:
        return (self.dir / (name + '.log')).read_text()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            proc.log.close()



def node_yml(registry: str, events: str, instances: str) -> str:
    return f'''registry: {registry}
events: {events}
env:
  PYTHONPATH: {ROOT / 'services'}
  FANNODE_IP: 0.0.0.0          # listen everywhere, register the address others can reach
sockets:
  web: {{host: 0.0.0.0, port: 4080}}
instances:
{instances}'''


def test_services_on_two_hosts_call_and_hear_each_other(hosts, tmp_path):
    a = Host(hosts['a'], A_IP, tmp_path / 'a')
    b = Host(hosts['b'], B_IP, tmp_path / 'b')
    for host in (a, b):
        host.dir.mkdir()
    dirs = {name: tmp_path / name for name in ('zookeeper', 'rabbitmq')}
    registry, events = 'zookeeper://%s:2181/multihost' % A_IP, 'amqp://guest:guest@%s:5672/%%2F' % A_IP
    try:
        for name, port in (('zookeeper', '2181'), ('rabbitmq', '5672')):  # both live on A
            started = a.run(str(PROVISION), 'start', name, '--host', A_IP, '--port', port, '--dir', str(dirs[name]),
                            timeout=120)
            assert started.returncode == 0, started.stdout + started.stderr
        (a.dir / 'node.yml').write_text(node_yml(registry, events, f'''  greeting:
    command: fannode instance --config {ROOT / 'conf' / 'greeting.yml'}
    numprocesses: 2
'''))
        (b.dir / 'node.yml').write_text(node_yml(registry, events, f'''  listen:
    command: fannode instance --config {ROOT / 'conf' / 'listen.yml'}
    numprocesses: 2
  web:
    command: fannode instance --config {ROOT / 'conf' / 'web.yml'}
    sockets: [web]
'''))
        node_a = a.spawn('up', 'up')
        b.spawn('up', 'up')
        for host in (a, b):
            wait_until(lambda: 'cluster ready' in host.output('up'), 60, 'the node on %s' % host.ip)

        seen = b.fannode('discover', '--all', '--instances', '--json', '--registry', registry)
        assert seen.returncode == 0, seen.stderr
        found = json.loads(seen.stdout)
        assert len(found['fannode.logs']) == 2  # a log hub per node
        assert {i['endpoint'].split('//')[1].split(':')[0] for i in found['Greeting']} == {A_IP}
        assert {i['endpoint'].split('//')[1].split(':')[0] for i in found['Listen']} == {B_IP}

        # B calls A; A's event reaches B
        reply = b.fannode('request', 'Greeting.greet', '{"name": "Bea"}', '--registry', registry,
                          '--trace-id', 'bea0bea0bea0bea0')
        assert (reply.returncode, reply.stdout) == (0, 'Hi, Bea!\n'), reply.stderr
        wait_until(lambda: 'Somebody greeted Bea' in b.output('up'), 10, 'Listen on B to hear it')
        assert 'Saying hi to Bea' in a.output('up')
        # Each node runs a log hub, found in ZooKeeper: one trace, lines from both hosts
        lines = wait_until(lambda: len(b.fannode('tail', '--no-follow', '--json', '--trace', 'bea0bea0',
                                                 '--registry', registry).stdout.splitlines()) == 2 and
                           b.fannode('tail', '--no-follow', '--json', '--trace', 'bea0bea0', '--registry',
                                     registry).stdout.splitlines(), 10, 'the trace in tail on B')
        assert sorted(json.loads(line)['msg'] for line in lines) == ['Saying hi to Bea', 'Somebody greeted Bea']
        path = b.fannode('trace', 'bea0bea0bea0bea0', '--registry', registry)
        assert path.returncode == 0, path.stderr
        assert path.stdout.index('rpc   Greeting.greet') < path.stdout.index('event Listen.on_greeted'), path.stdout
        # HTTP on B, through Greeting on A
        page = b.run('curl', '-s', 'http://%s:4080/greet?name=bo' % B_IP) if shutil.which('curl') else \
            b.run(sys.executable, '-c', 'import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('
                  '"http://%s:4080/greet?name=bo").read().decode())' % B_IP)
        assert page.stdout == 'Hi, bo!'

        # Host A dies: its instances leave discovery when ZooKeeper ends their sessions
        node_a.kill()
        wait_until(lambda: 'Greeting' not in b.fannode('discover', '--registry', registry).stdout, 15,
                 "A's instances to leave discovery")
        assert 'Listen [2]' in b.fannode('discover', '--registry', registry).stdout
    finally:
        b.stop()
        a.stop()
        for name, d in dirs.items():
            a.run(str(PROVISION), 'stop', name, '--dir', str(d))
