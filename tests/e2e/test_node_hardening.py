"""`fannode up` against hostile and unlucky input (issue 18): the control socket, process
counts, process trees, one node per file, the runtime dir, the terminal, the environment
and relative paths. Real CLI, real processes; every pid a test starts is killed at its end."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request

import psutil
import pytest
import zmq

from conftest import FANNODE, ROOT, one_line_error, wait_until
from test_node import Node

from fannode.node.client import request

pytestmark = pytest.mark.e2e


class Tree:
    """A block whose process starts two children of its own and writes their pids down."""

    def __init__(self, node: Node, name: str, ignore_term: bool = False, exit_after: float | None = None):
        """With `exit_after`, the process itself takes SIGTERM: it writes down when it came
        (to `term`), and exits that many seconds later; its children still ignore it."""
        self.file = node.dir / ('%s.pids' % name)
        self.term = node.dir / ('%s.term' % name)
        trap = 'trap "" TERM; ' if ignore_term else ''  # its children inherit the ignored TERM
        if exit_after is not None:
            trap_after = 'trap "date +%%s.%%N > %s; sleep %g; exit 0" TERM; ' % (self.term, exit_after)
        else:
            trap_after = ''
        self.command = ('[sh, -c, \'%ssleep 1000 & echo $! >> %s; sleep 1000 & echo $! >> %s; %swait\']'
                        % (trap, self.file, self.file, trap_after))
        self.seen: list[psutil.Process] = []

    def children(self, count: int = 2) -> list[psutil.Process]:
        """The children written down since the last call (waits for `count` of them)."""
        def written() -> list[int]:
            pids = [int(p) for p in self.file.read_text().split()] if self.file.exists() else []
            return pids if len(pids) >= len(self.seen) + count else []
        pids = wait_until(written, timeout=10, message='the tree to start its children')
        new = [psutil.Process(pid) for pid in pids[len(self.seen):]]
        self.seen += new
        return new

    def kill_all(self) -> None:
        for proc in self.seen:
            try:
                if proc.is_running():
                    proc.kill()
            except psutil.NoSuchProcess:
                pass


def printed(node: Node, who: str, text: str) -> bool:
    """`who` (block.index) printed a line that is `text`, after its padded prefix."""
    for line in node.output().splitlines():
        prefix, sep, rest = line.partition(' │ ')
        if sep and prefix.strip() == who and rest == text:
            return True
    return False


def gone(procs: list[psutil.Process]) -> bool:
    """None of them runs (a zombie nobody has reaped yet runs nothing)."""
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            pass
    return True


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path)
    n.trees: list[Tree] = []
    yield n
    n.stop()
    for tree in n.trees:
        tree.kill_all()


def tree_node(node: Node, *, ignore_term: bool = False, stop_timeout: float = 1.0,
              exit_after: float | None = None) -> Tree:
    tree = Tree(node, 'tree', ignore_term, exit_after)
    node.trees.append(tree)
    node.write(f'''registry: {node.hub}
instances:
  tree:
    command: {tree.command}
    stop_timeout: {stop_timeout}
  keep:
    command: sleep 1000
''')
    node.up()
    node.wait_for('cluster ready', 30)
    node.remember_children()
    return tree


# ---------------------------------------------------------------- process trees


def test_a_killed_process_takes_its_children_with_it(node):
    tree = tree_node(node, ignore_term=True)  # its children ignore SIGTERM: SIGKILL after 1 s
    kids = tree.children()
    leader = node.ps()['tree']['processes'][0]['pid']
    os.kill(leader, signal.SIGKILL)
    wait_until(lambda: gone(kids), timeout=5, message='the children of the killed process to go')
    again = tree.children()  # the replacement starts its own, and they stay
    assert not gone(again)


def test_removing_a_block_stops_its_whole_tree(node):
    tree = tree_node(node, ignore_term=True)
    kids = tree.children()
    keep = node.ps()['keep']['processes'][0]['pid']
    node.write(node.file.read_text().split('  tree:')[0] + '  keep:\n    command: sleep 1000\n')
    node.wait_for('tree: removed')
    wait_until(lambda: gone(kids), timeout=8, message='the removed block\'s tree to go')
    assert [p['pid'] for p in node.ps()['keep']['processes']] == [keep]


@pytest.mark.parametrize('how', ['scale', 'stop'])
def test_children_ignoring_sigterm_are_killed_stop_timeout_after_the_first_one(node, how):
    """The process exits 1.5 s into its 2 s grace; its children ignore SIGTERM. The grace
    started again when it exited (a new SIGTERM from the sweep): they had 3.5 s, not 2."""
    tree = tree_node(node, ignore_term=True, stop_timeout=2.0, exit_after=1.5)
    kids = tree.children()
    if how == 'scale':  # the node stops the process itself
        assert node.cli('scale', 'tree', '0').returncode == 0
    else:  # circus stops it, as the node stops
        node.proc.send_signal(signal.SIGTERM)
    termed = wait_until(lambda: tree.term.exists() and tree.term.read_text().strip(), timeout=10,
                        message='the process to get SIGTERM')
    deadline = float(termed) + 2.0 + 0.7  # stop_timeout, and the sweep's tick with room to spare
    wait_until(lambda: gone(kids), timeout=max(0.0, deadline - time.time()),
               message='the children to be killed within stop_timeout of the first SIGTERM')


def test_sigterm_to_the_node_stops_every_tree(node):
    tree = tree_node(node)
    kids = tree.children()
    watchdog = [p for p in psutil.Process(node.proc.pid).children() if 'watchdog.py' in ' '.join(p.cmdline())]
    assert len(watchdog) == 1
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(20) == 0
    assert gone(kids) and gone(watchdog)  # at once: the node waited for them
    assert node.alive_children() == []


def test_sigkill_of_the_node_leaves_no_tree_behind(node):
    tree = tree_node(node, ignore_term=True)
    kids = tree.children()
    watchdog = [p for p in psutil.Process(node.proc.pid).children() if 'watchdog.py' in ' '.join(p.cmdline())]
    node.proc.kill()
    node.proc.wait(5)
    wait_until(lambda: gone(kids), timeout=5, message='the grandchildren to die with the node')
    wait_until(lambda: gone(watchdog), timeout=5, message='the watchdog to exit')
    wait_until(lambda: node.alive_children() == [], timeout=5, message='every child to die')


# ---------------------------------------------------------------- process counts


def test_numprocesses_beyond_the_limit_is_refused_at_load(node):
    node.write(f'registry: {node.hub}\ninstances:\n  many:\n    command: sleep 1000\n    numprocesses: 10000\n')
    line = one_line_error(node.cli('up', '--check'), 2)
    assert line.startswith('error: node.yml:5: instances.many.numprocesses: asks for 10000 processes, '
                           'more than this node may run: ')
    assert line.endswith('; set $FANNODE_MAX_PROCESSES to allow more')
    node.env['FANNODE_MAX_PROCESSES'] = '10000'  # the explicit override
    assert node.cli('up', '--check').returncode == 0


def test_a_new_count_stops_a_scale_up_in_the_middle(node):
    node.env['FANNODE_MAX_PROCESSES'] = '1000'
    node.write(f'registry: {node.hub}\ninstances:\n  many:\n    command: sleep 1000\n    numprocesses: 600\n')
    node.up()
    started = lambda: len(re.findall(r'many\.\d+ started', node.output()))  # noqa: E731
    wait_until(lambda: started() >= 20, timeout=30, message='the scale-up to be under way')
    result = node.cli('scale', 'many', '0')
    assert result.returncode == 0 and result.stdout.strip() == 'many: 600 → 0 processes'
    at_answer = started()
    wait_until(lambda: node.ps()['many']['processes'] == [], timeout=15, message='every process stopped')
    node.remember_children()
    assert started() < at_answer + 10 < 600  # it stopped spawning at once, not 600 later
    assert node.ps()['many']['state'] == 'stopped'


def test_scale_beyond_the_limit_and_names_too_long_are_refused(node):
    tree_node(node)
    line = one_line_error(node.cli('scale', 'keep', '100000'), 2)
    assert line.startswith('error: keep: the node would run 100001 processes, more than this node may run:')
    line = one_line_error(node.cli('scale', 'k' * 100_000, '1'), 2)
    assert line == 'error: no instance block of 100000 characters: names have at most 64'
    assert node.cli('ps').returncode == 0


# ---------------------------------------------------------------- the control socket


def test_garbage_on_the_control_socket_never_stops_it_answering(node):
    tree_node(node)
    runtime = node.dir / 'fannode'
    control = next(runtime.glob('node-*.control'))
    endpoint = 'ipc://%s' % control
    # the files in the runtime dir are the user's alone
    assert stat.S_IMODE(os.stat(runtime).st_mode) == 0o700
    for path in runtime.iterdir():
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600, path
    with socket.socket(socket.AF_UNIX) as raw:  # not ZMTP: read as ZMTP/1.0, a 3-part message
        raw.connect(str(control))
        raw.sendall(b'\x01\x00' + b'\x02\x01a' + b'\x02\x00b')
        time.sleep(0.2)
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.linger = 2000  # sent before it closes
    dealer.connect(endpoint)
    dealer.send_multipart([b'two', b'parts'])
    dealer.send(b'\xc1 not msgpack')
    dealer.close()
    assert node.cli('ps').returncode == 0
    replies = {}
    for key, subject, body in [('list', 'node.scale', [1, 2]), ('count', 'node.scale', {'name': 'keep', 'count': 'x'}),
                               ('name', 'node.restart', {'name': 7}), ('pid', 'node.restart_process', {'pid': 1}),
                               ('big', 'node.scale', {'name': 'k' * (1 << 20), 'count': 1})]:
        reply = request(endpoint, subject, body, 3.0 if key == 'big' else 10.0)
        replies[key] = reply.body['message'] if reply is not None else None
        assert node.cli('ps').returncode == 0, key  # each time, still answering
    assert replies == {
        'list': "the body of 'node.scale' must be a mapping, got [1, 2]",
        'count': "'count' must be a whole number >= 0, got 'x'",
        'name': "'name' must be a block name, got 7",
        'pid': 'pid 1 is not a process of this node',
        'big': None}  # more than 64 KiB: the connection is dropped unread
    status = json.loads(node.cli('ps', '--json').stdout)
    assert status['control']['dropped'] >= 3
    assert node.output().count('control socket: dropped a malformed message') == 1  # said once


# ---------------------------------------------------------------- one node, its files


def test_the_same_file_through_a_symlinked_directory_is_the_same_node(node):
    real = node.dir / 'real'
    real.mkdir()
    (node.dir / 'link').symlink_to(real)
    node.file = real / 'node.yml'
    node.write(f'registry: {node.hub}\ninstances:\n  keep:\n    command: sleep 1000\n')
    node.log = open(node.dir / 'up.log', 'w+')
    node.proc = subprocess.Popen([*FANNODE, 'up'], cwd=real, env=node.env, stdout=node.log,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    node.wait_for('cluster ready', 30)
    node.remember_children()
    linked = str(node.dir / 'link' / 'node.yml')
    line = one_line_error(node.cli('up', '--file', linked), 1)
    assert line == 'error: a node is already running for %s (pid %d)' % (linked, node.proc.pid)
    ps = node.cli('ps', '--json', '--file', linked)
    assert json.loads(ps.stdout)['pid'] == node.proc.pid


def test_a_runtime_dir_others_may_write_to_is_refused(node):
    runtime = node.dir / 'fannode'
    runtime.mkdir()
    runtime.chmod(0o777)
    node.write(f'registry: {node.hub}\ninstances:\n  keep:\n    command: sleep 1000\n')
    expected = ('error: the runtime directory %s is writable by others (mode 777): chmod 700 it, or remove it, '
                'or set $XDG_RUNTIME_DIR to a directory of your own' % runtime)
    assert one_line_error(node.cli('up'), 1) == expected
    assert one_line_error(node.cli('ps'), 1) == expected


# ---------------------------------------------------------------- the terminal


def test_no_child_or_client_text_reaches_the_terminal_raw(node):
    forged = json.dumps({'kind': 'log', 'service': 'billing', 'level': 'ERROR', 'msg': 'forged', 'ts': 1.0})
    script = ("import sys; print('title \\x1b]0;owned\\x07 clear \\x1b[2J'); "
              "sys.stderr.write(%r + chr(10)); sys.stdout.flush(); sys.stderr.flush(); "
              "import time; time.sleep(1000)" % forged)
    node.write(f'''registry: {node.hub}
env:
  PYTHONPATH: {ROOT / 'services'}
sockets:
  web: {{host: 127.0.0.1, port: {node.web_port}}}
instances:
  greeting:
    command: fannode instance --config {ROOT / 'conf' / 'greeting.yml'}
  web:
    command: fannode instance --config {ROOT / 'conf' / 'web.yml'}
    sockets: [web]
  forger:
    command: [python3, -c, {json.dumps(script)}]
''')
    node.up()
    node.wait_for('cluster ready', 60)
    node.remember_children()
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen('http://127.0.0.1:%d/hello%%1b]0;owned%%07%%1b[2J' % node.web_port, timeout=10)
    node.wait_for('/hello')
    node.wait_for('forged')
    raw = (node.dir / 'up.log').read_bytes()
    assert b'\x1b' not in raw and b'\x07' not in raw
    out = node.output()
    assert 'GET /hello\\x1b]0;owned\\x07\\x1b[2J' in out  # shown, not obeyed
    assert printed(node, 'forger.1', 'title \\x1b]0;owned\\x07 clear \\x1b[2J')
    # a record from a command that is not fannode is a line of text like any other
    assert printed(node, 'forger.1', forged)
    assert [line for line in out.splitlines() if 'forged' in line and 'forger.1' in line] == [
        line for line in out.splitlines() if line.endswith(' │ ' + forged)]  # never shown as a record


# ---------------------------------------------------------------- environment, paths


def test_the_environment_and_node_yml_disagreeing_is_said(node):
    node.write(f'registry: {node.hub}\ninstances: {{}}\n')
    node.env['FANNODE_EVENTS'] = 'amqp://guest:secret@rabbit:5672/%2F'
    result = node.cli('up', '--check')
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        'note: $FANNODE_EVENTS is amqp://guest:***@rabbit:5672/%%2F, but the node runs events on %s '
        '(from node.yml); its processes get %s, commands you run in this shell use $FANNODE_EVENTS'
        % (node.hub, node.hub)]
    node.env['FANNODE_EVENTS'] = node.hub
    assert node.cli('up', '--check').stderr == ''


def test_the_variables_mean_what_they_mean_to_every_other_command(node):
    """`FANNODE_EVENTS=hub` is the hub the registry names (fannode.settings): with the node's
    hub on another port than the default, it was taken for the default and said to disagree."""
    node.write(f'registry: {node.hub}\ninstances: {{}}\n')
    node.env['FANNODE_EVENTS'] = 'hub'
    result = node.cli('up', '--check')
    assert result.returncode == 0 and result.stderr == '', result.stderr
    node.env['FANNODE_REGISTRY'] = 'hub'  # the default hub, then, for both: not the node's
    lines = node.cli('up', '--check').stderr.splitlines()
    assert [line.split(',')[0] for line in lines] == ['note: $FANNODE_REGISTRY is hub', 'note: $FANNODE_EVENTS is hub']


def test_the_repository_node_yml_follows_both_variables(node):
    node.write((ROOT / 'node.yml').read_text())
    node.env.update(FANNODE_REGISTRY='zookeeper://zk1:2181/fannode', FANNODE_EVENTS='amqp://rabbit:5672/%2F')
    result = node.cli('up', '--check')
    assert result.returncode == 0 and result.stderr == '', result.stderr  # node and commands agree


def test_relative_pythonpath_and_command_are_relative_to_node_yml_not_cwd(node):
    (node.dir / 'lib').mkdir()
    (node.dir / 'lib' / 'where.py').write_text("PLACE = 'lib beside node.yml'\n")
    (node.dir / 'bin').mkdir()
    hello = node.dir / 'bin' / 'hello.sh'
    hello.write_text('#!/bin/sh\necho "hello from $(pwd)"\nexec sleep 1000\n')
    hello.chmod(0o755)
    (node.dir / 'sub').mkdir()
    node.write(f'''registry: {node.hub}
env:
  PYTHONPATH: lib
instances:
  py:
    command: python3 -c "import where; print(where.PLACE, flush=True); import time; time.sleep(1000)"
    cwd: sub
  sh:
    command: ./bin/hello.sh
    cwd: sub
''')
    node.up()
    wait_until(lambda: printed(node, 'py.1', 'lib beside node.yml'), timeout=30, message='py.1 to print')
    wait_until(lambda: printed(node, 'sh.1', 'hello from %s' % (node.dir / 'sub')), timeout=30,
               message='sh.1 to print')
    node.remember_children()


def test_a_huge_or_endless_node_yml_is_refused_unread(node):
    node.file.write_text('# padding\n' * 200_000)  # 2 MB
    line = one_line_error(node.cli('up', '--check'), 2)
    assert line == 'error: node.yml: larger than 1048576 bytes ($FANNODE_CONFIG_MAX_BYTES); is it a config file?'
    fifo = node.dir / 'fifo.yml'
    os.mkfifo(fifo)
    line = one_line_error(node.cli('up', '--check', '--file', str(fifo), timeout=10), 2)
    assert line == 'error: %s: not a regular file (a pipe or a device is read once, or never ends)' % fifo
    name = 'n' * 100
    node.file.write_text(f'instances:\n  {name}: sleep 1\n')
    line = one_line_error(node.cli('up', '--check'), 2)
    assert line == ("error: node.yml:2: instances: bad instance name '%s... (100 characters): expected up to 64 "
                    "letters, digits, _ . - (starting with a letter or digit)" % name[:39])


def test_ps_shows_what_quotes_node_yml_as_text(node):
    node.write(f"registry: {node.hub}\ninstances:\n  odd:\n    command: '[/oops] --x'\n")
    node.up()
    node.wait_for('cluster up with failures', 30)
    node.remember_children()
    result = node.cli('ps')
    assert result.returncode == 0 and 'Traceback' not in result.stderr, result.stderr
    assert 'command not found: [/oops]' in result.stdout
