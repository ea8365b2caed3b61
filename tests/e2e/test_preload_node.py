"""Preloaded blocks end to end (`preload:`, fannode.node.preload): instances forked from one
template per block are the node's own children and serve; an edited service runs its new
code after a restart; a service the template cannot import is said once and started the
usual way; a killed template is replaced; `preload: false` starts each process with exec."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from conftest import wait_until
from test_node import Node

pytestmark = pytest.mark.e2e

SERVICE = '''import fannode
{extra}

class Echo(fannode.Interface):
    @fannode.rpc()
    def hello(self):
        return {answer!r}
'''


def write_service(directory: Path, answer: str, extra: str = '') -> None:
    """A new file put in place, with a new size (Python's bytecode cache looks at size and
    mtime in seconds)."""
    tmp = directory / '.echo.py.tmp'
    tmp.write_text(SERVICE.format(answer=answer, extra=extra))
    os.replace(tmp, directory / 'echo.py')


def project(node: Node, count: int = 2, preload: str = '', answer: str = 'one', extra: str = '') -> None:
    # the code in a directory of its own: the node's runtime directory (XDG_RUNTIME_DIR, the
    # test's directory) holds a `fannode` directory that would shadow the package
    (node.dir / 'code').mkdir(exist_ok=True)
    write_service(node.dir / 'code', answer, extra)
    (node.dir / 'echo.yml').write_text('interfaces:\n  Echo:\n    class: echo:Echo\n')
    node.write(f'''registry: {node.hub}
env: {{PYTHONPATH: code}}
instances:
  echo:
    command: fannode instance --config echo.yml
    numprocesses: {count}
{preload}''')


def ask(node: Node) -> str:
    result = node.cli('request', 'Echo.hello', '--registry', node.hub, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else 'exit %d: %s' % (result.returncode, result.stderr)


def children(node: Node) -> dict[str, list[psutil.Process]]:
    """The node's children by what ps shows: templates, instances, the rest."""
    found: dict[str, list[psutil.Process]] = {'template': [], 'instance': [], 'other': []}
    for child in psutil.Process(node.proc.pid).children():
        try:
            line = ' '.join(child.cmdline())
        except psutil.Error:
            continue
        kind = ('template' if line.startswith('fannode preload') else
                'instance' if 'instance --config echo.yml' in line else 'other')
        found[kind].append(child)
    return found


def stop_cleanly(node: Node) -> None:
    node.remember_children()
    node.proc.send_signal(signal.SIGINT)
    assert node.proc.wait(30) == 0, node.output()
    assert node.alive_children() == []  # the template went with the node


def test_instances_are_forked_from_one_template_and_are_the_nodes_children(node):
    project(node, count=3)
    node.up('--no-tui')
    node.wait_for('cluster ready', 60)
    assert ask(node) == 'one'
    kids = children(node)
    assert len(kids['template']) == 1, kids
    assert ' '.join(kids['template'][0].cmdline()).strip() == 'fannode preload echo'  # as ps shows it
    pids = node.pids('Echo')
    assert {p.pid for p in kids['instance']} == pids and len(pids) == 3
    for proc in kids['instance']:
        assert os.getpgid(proc.pid) == proc.pid  # a group of its own, as circus gives every process
        assert proc.ppid() == node.proc.pid
        # most of its memory is the template's, shared: the imports were done once
        memory = proc.memory_full_info()
        assert memory.uss < memory.rss * 0.6, memory
    assert 'started without preloading' not in node.output()
    ps = node.ps()['echo']
    assert sorted(p['pid'] for p in ps['processes']) == sorted(pids)
    stop_cleanly(node)


def test_a_killed_instance_and_a_killed_template_are_replaced(node):
    project(node, count=2)
    node.up('--no-tui')
    node.wait_for('cluster ready', 60)
    template = children(node)['template'][0]
    victim = min(node.pids('Echo'))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(node.pids('Echo')) == 2 and victim not in node.pids('Echo'), 20,
               message='the killed instance replaced')
    template.kill()
    template.wait(5)
    victim = min(node.pids('Echo'))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(node.pids('Echo')) == 2 and victim not in node.pids('Echo'), 20,
               message='an instance replaced without its template')
    assert ask(node) == 'one'
    # the next process comes from a new template
    wait_until(lambda: len(children(node)['template']) == 1, 20, message='a new template')
    stop_cleanly(node)


def test_a_restart_after_an_edit_runs_the_new_code(node):
    project(node, count=2, answer='one')
    node.up('--no-tui')
    node.wait_for('cluster ready', 60)
    assert ask(node) == 'one'
    write_service(node.dir / 'code', 'two, edited')
    result = node.cli('restart', 'echo')
    assert result.returncode == 0, result.stderr
    wait_until(lambda: ask(node) == 'two, edited', 30, message='the new code answering')
    answers = {ask(node) for _ in range(6)}
    assert answers == {'two, edited'}
    assert 'started without preloading' not in node.output()  # a changed service is expected
    stop_cleanly(node)


def test_a_service_the_template_cannot_import_is_said_once_and_started_plainly(node):
    project(node, count=2, extra='import os\nif os.environ.get("BREAK_PRELOAD"):\n    raise RuntimeError("no preload here")\n')
    node.env['BREAK_PRELOAD'] = '1'
    node.up('--no-tui')
    node.wait_for('started without preloading', 60)
    lines = [line for line in node.output().splitlines() if 'started without preloading' in line]
    assert len(lines) == 1, lines
    assert 'echo: ' in lines[0] and 'no preload here' in lines[0]
    # the instances then fail on their own, as they would without preloading, with their own error
    node.wait_for('no preload here', 30, after=node.output().index(lines[0]) + len(lines[0]))


def test_preload_false_starts_each_process_with_exec(node):
    project(node, count=2, preload='    preload: false\n')
    node.up('--no-tui')
    node.wait_for('cluster ready', 60)
    assert ask(node) == 'one'
    kids = children(node)
    assert kids['template'] == []
    assert len(kids['instance']) == 2
    for proc in kids['instance']:
        assert proc.cmdline()[-3:] == ['instance', '--config', 'echo.yml'], proc.cmdline()  # exec'd: the fannode script
    stop_cleanly(node)


def test_a_bad_preload_value_is_one_line_naming_the_key(node):
    project(node, preload='    preload: sometimes\n')
    result = node.cli('up', '--check')
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'node.yml:' in lines[0] and 'instances.echo.preload' in lines[0], lines
