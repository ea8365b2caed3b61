"""Autoreload end to end: `fannode up --reload` and `reload:` restart the blocks whose
sources changed (one process at a time), `fannode instance --reload` re-runs itself.
Real processes, real files edited as an editor saves them."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from conftest import FANNODE, ROOT, free_port, wait_until
from fannode.node.stopnode import alive
from test_node import Node

pytestmark = pytest.mark.e2e

SERVICE = '''import fannode


class {name}(fannode.Interface):
    @fannode.rpc()
    def hello(self):
        return {answer!r}
'''


def write_service(directory: Path, name: str, answer: str) -> None:
    """As editors save: a new file put in place (and a new size, so Python's bytecode
    cache, which looks at size and mtime in seconds, cannot serve the old code)."""
    path = directory / ('%s.py' % name.lower())
    tmp = directory / ('.%s.py.tmp' % name.lower())
    tmp.write_text(SERVICE.format(name=name, answer=answer))
    os.replace(tmp, path)


def project(tmp_path: Path) -> None:
    for name, answer in (('Alpha', 'alpha 1'), ('Beta', 'beta 1')):
        (tmp_path / name.lower()).mkdir()
        write_service(tmp_path / name.lower(), name, answer)
        (tmp_path / ('%s.yml' % name.lower())).write_text(
            'interfaces:\n  %s:\n    class: %s:%s\n' % (name, name.lower(), name))


def topology(node: Node, alpha: int = 1, beta: int = 1) -> str:
    # each service's code in a directory of its own, on its own PYTHONPATH
    return f'''registry: {node.hub}
instances:
  alpha:
    command: fannode instance --config alpha.yml
    numprocesses: {alpha}
    env: {{PYTHONPATH: alpha}}
  beta:
    command: fannode instance --config beta.yml
    numprocesses: {beta}
    env: {{PYTHONPATH: beta}}
'''


def ask(node: Node, service: str) -> str:
    result = node.cli('request', '%s.hello' % service, '--registry', node.hub, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else 'exit %d: %s' % (result.returncode, result.stderr)


def test_up_reload_restarts_only_the_block_whose_source_changed(node, tmp_path):
    project(tmp_path)
    node.write(topology(node))
    node.up('--reload')
    node.wait_for('cluster ready', 90)
    node.remember_children()
    beta = node.pids('Beta')
    assert ask(node, 'Alpha') == 'alpha 1'
    mark = len(node.output())
    # one save of two files: one restart
    write_service(tmp_path / 'alpha', 'Alpha', 'alpha 2, reloaded')
    (tmp_path / 'alpha' / 'extra.py').write_text('X = 1\n')
    node.wait_for('alpha: reloading (alpha/alpha.py, alpha/extra.py changed)', 30, after=mark)
    wait_until(lambda: ask(node, 'Alpha') == 'alpha 2, reloaded', 60, interval=0.3, message='the new Alpha code')
    node.wait_for('alpha: reloaded (1 process replaced)', 60, after=mark)
    node.remember_children()
    assert node.pids('Beta') == beta  # untouched
    # a file that is not Python, and editor litter, restart nothing
    (tmp_path / 'alpha' / 'notes.txt').write_text('x')
    (tmp_path / 'alpha' / '.alpha.py.swp').write_text('x')
    write_service(tmp_path / 'beta', 'Beta', 'beta 2')
    node.wait_for('beta: reloaded (1 process replaced)', 60, after=mark)
    # counted once both reloads are over: a stray reload of either, early or late, shows here
    out = node.output()[mark:]
    assert out.count('beta: reloading') == 1 and out.count('alpha: reloading') == 1, out
    assert out.index('alpha: reloaded') < out.index('beta: reloading (beta/beta.py changed)'), out


def test_reload_key_restarts_a_block_one_process_at_a_time(node, tmp_path):
    project(tmp_path)
    node.write(topology(node, alpha=3).replace('    env: {PYTHONPATH: alpha}\n',
                                                 '    env: {PYTHONPATH: alpha}\n    reload: true\n'))
    node.up()  # no --reload: only the block that asks for it
    node.wait_for('cluster ready', 90)
    node.remember_children()
    old = node.pids('Alpha')
    assert len(old) == 3
    seen: list[int] = []  # instances registered, sampled through the restart

    def replaced() -> bool:
        pids = node.pids('Alpha')
        seen.append(len(pids))
        return len(pids) == 3 and not pids & old
    write_service(tmp_path / 'alpha', 'Alpha', 'alpha 2')
    write_service(tmp_path / 'beta', 'Beta', 'beta 2, unwatched')
    wait_until(replaced, 120, interval=0.05, message='three new Alpha instances')
    node.remember_children()
    assert min(seen) >= 3, seen  # each new one ready before an old one stops
    assert ask(node, 'Alpha') == 'alpha 2'
    node.wait_for('alpha: reloaded (3 processes replaced)', 30)
    out = node.output()
    assert out.count('alpha: reloading') == 1 and 'beta: reloading' not in out
    assert node.ps()['alpha']['state'] == 'ready'


def test_broken_code_pauses_the_reload_and_fixed_code_resumes_it(node, tmp_path):
    project(tmp_path)
    node.write(topology(node, alpha=2).replace(
        '    env: {PYTHONPATH: alpha}\n',
        '    env: {PYTHONPATH: alpha}\n    reload: true\n    max_restarts: 1\n    ready: {registered: true, timeout: 5}\n'))
    node.up()
    node.wait_for('cluster ready', 90)
    node.remember_children()
    broken = tmp_path / 'alpha' / '.broken.tmp'
    broken.write_text('raise RuntimeError("half-written")\n')
    os.replace(broken, tmp_path / 'alpha' / 'alpha.py')
    node.wait_for('alpha: reload failed: ', 60)
    node.remember_children()
    assert ask(node, 'Alpha') == 'alpha 1'  # the process not yet replaced still serves
    write_service(tmp_path / 'alpha', 'Alpha', 'alpha 3, fixed')
    wait_until(lambda: node.pids('Alpha') and all(ask(node, 'Alpha') == 'alpha 3, fixed' for _ in range(4)),
               90, interval=0.5, message='only fixed Alpha code answering')
    node.remember_children()
    node.wait_for('alpha: reloaded', 60)
    assert node.ps()['alpha']['state'] == 'ready'


def test_a_bad_reload_key_is_one_line_naming_it(node, tmp_path):
    node.write('instances:\n  a:\n    command: sleep 10\n    reload: [nowhere]\n')
    result = node.cli('up', '--check')
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'node.yml:4: instances.a.reload.0: no such file or directory' in lines[0], lines


def test_instance_reload_reruns_the_instance_when_its_code_changes(tmp_path):
    project(tmp_path)
    hub_url = 'hub://127.0.0.1:%d' % free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / 'alpha'), str(ROOT)]),
               FANNODE_REGISTRY=hub_url, XDG_STATE_HOME=str(tmp_path / 'state'))
    env.pop('FANNODE_EVENTS', None)
    log = open(tmp_path / 'instance.log', 'w+')
    hub = subprocess.Popen([*FANNODE, 'hub', '--no-journal'], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    proc = subprocess.Popen([*FANNODE, 'instance', '--config', 'alpha.yml', '--reload'], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    children: list[psutil.Process] = []  # not bare pids: one reused meanwhile is not ours

    def answer() -> str:
        result = subprocess.run([*FANNODE, 'request', 'Alpha.hello'], env=env, capture_output=True, text=True,
                                timeout=60, stdin=subprocess.DEVNULL)
        children.extend(psutil.Process(proc.pid).children(recursive=True))
        return result.stdout.strip()
    try:
        wait_until(lambda: answer() == 'alpha 1', 60, interval=0.3, message='Alpha answering')
        write_service(tmp_path / 'alpha', 'Alpha', 'alpha 2, re-run')
        wait_until(lambda: answer() == 'alpha 2, re-run', 60, interval=0.3, message='the new Alpha code')
        assert 'Alpha: reloading (alpha/alpha.py changed)' in (tmp_path / 'instance.log').read_text()
        # broken code: the instance exits, the watcher waits for the fix
        broken = tmp_path / 'alpha' / '.broken.tmp'
        broken.write_text('raise RuntimeError("half-written")\n')
        os.replace(broken, tmp_path / 'alpha' / 'alpha.py')
        wait_until(lambda: 'Alpha: exited with status 2; started again when a file changes'
                   in (tmp_path / 'instance.log').read_text(), 60, message='the crash said')
        write_service(tmp_path / 'alpha', 'Alpha', 'alpha 3, fixed')
        wait_until(lambda: answer() == 'alpha 3, fixed', 60, interval=0.3, message='the fixed Alpha code')
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        for p in (proc, hub):
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for child in alive(children):
            try:
                child.kill()  # psutil checks it is still the process we saw
            except psutil.NoSuchProcess:
                pass
        log.close()


def test_a_block_without_per_process_readiness_is_replaced_process_by_process(node, tmp_path):
    app = tmp_path / 'app'
    app.mkdir()
    script = 'import time\nprint("app %s", flush=True)\ntime.sleep(600)\n'
    (app / 'app.py').write_text(script % 'v1')
    node.write(f'registry: {node.hub}\ninstances:\n  app:\n    command: python3 app.py\n    cwd: app\n'
               '    numprocesses: 2\n    reload: true\n')
    node.up()
    node.wait_for('cluster ready', 90)
    node.remember_children()
    old = {p['pid'] for p in node.ps()['app']['processes']}
    mark = len(node.output())
    tmp = app / '.app.py.tmp'
    tmp.write_text(script % 'v2, new')
    os.replace(tmp, app / 'app.py')
    node.wait_for('app: reloaded (2 processes replaced)', 60, after=mark)
    node.remember_children()
    new = {p['pid'] for p in node.ps()['app']['processes']}
    assert len(new) == 2 and not new & old
    wait_until(lambda: node.output()[mark:].count('app v2, new') == 2, 30, message='both new processes printing')
    assert 'app: reloading (app/app.py changed)' in node.output()[mark:]
