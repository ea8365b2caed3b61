"""What the anchor rows need beside bench/procs.py: real RabbitMQ and ZooKeeper servers,
started and stopped with scripts/provision, the anchors venv, where nameko and zerorpc
live apart from the project's own, and the client processes that run in it.

    python -m bench.anchors      create bench/.anchors-venv, or say it is there
"""
from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from bench.procs import BENCH, BROKER, CLIENT, ROOT, BenchError, Proc, Procs, Skip, pin

PROVISION = ROOT / 'scripts' / 'provision'
START_TIMEOUT = {'rabbitmq': 90.0, 'zookeeper': 60.0}  # provision's own deadlines, plus slack

VENV = BENCH / '.anchors-venv'
STAMP = VENV / '.installed'
# What `pip install nameko==2.14.1 zerorpc` resolved to on Python 3.11 (Nov 2026), pinned so
# every run compares against the same anchors. gevent, pyzmq and msgpack as in .venv: the
# zerorpc row then differs from fannode by the framework alone.
PINS = ['nameko==2.14.1', 'eventlet==0.41.3', 'kombu==5.7.0', 'amqp==5.4.2',
        'zerorpc==0.6.3', 'gevent==26.9.0', 'pyzmq==27.3.0', 'msgpack==1.2.4']


# -- servers ------------------------------------------------------------------------------

class Servers:
    """RabbitMQ and ZooKeeper, each started by `scripts/provision start` on a free port with
    everything under a directory of its own in the run's scratch dir. `stop_all` runs
    `provision stop` for each, which stops exactly the processes it started for that dir
    (by PID, found through a marker in their environment), and removes the dirs."""

    def __init__(self, procs: Procs):
        self.procs = procs
        self.dirs: dict[str, Path] = {}
        self.versions: dict[str, str] = {}  # Debian package → version, for the caption
        self.cpus: list[int] = []  # where the servers run (pinned with the hub's role)

    def start(self, ports: dict[str, int]) -> None:
        """Start the servers of `ports` ({'rabbitmq': P, ...}) side by side, and wait until
        each answers (RabbitMQ takes 5-8 s, ZooKeeper 1-2 s)."""
        status = subprocess.run([sys.executable, str(PROVISION), 'status'], capture_output=True, text=True)
        for line in status.stdout.splitlines():
            package, _, version = line.partition(': ')
            if 'not installed' not in version:
                self.versions[package] = version.strip()
        for kind in ports:
            package = 'rabbitmq-server' if kind == 'rabbitmq' else kind
            if package not in self.versions:
                raise Skip('%s is not installed: run `make provision` (scripts/provision install)' % package)
        starting = {}
        try:
            for kind, port in ports.items():
                d = self.dirs[kind] = self.procs.dir / kind
                d.mkdir()
                log = open(self.procs.dir / ('provision-%s.log' % kind), 'wb')
                # Own session: a Ctrl-C is ours to handle; the finally below stops what started.
                starting[kind] = subprocess.Popen(
                    [sys.executable, str(PROVISION), 'start', kind, '--port', str(port), '--dir', str(d)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                log.close()
            for kind, popen in starting.items():
                try:
                    code = popen.wait(START_TIMEOUT[kind])
                except subprocess.TimeoutExpired:
                    raise BenchError('scripts/provision start %s did not finish within %gs'
                                     % (kind, START_TIMEOUT[kind])) from None
                if code != 0:
                    out = (self.procs.dir / ('provision-%s.log' % kind)).read_text(errors='replace').strip()
                    raise BenchError('scripts/provision start %s failed: %s'
                                     % (kind, out.splitlines()[-1] if out else 'exit %d' % code))
            for pid in self.pids():  # the broker beside the callers, as the hub is
                self.cpus = pin(BROKER, pid)
        finally:
            for popen in starting.values():  # only when interrupted or failed: by PID
                if popen.poll() is None:
                    popen.kill()
                    popen.wait()

    def pids(self) -> list[int]:
        """Every live process provision started for our dirs (RabbitMQ: the broker, its
        epmd and helpers), for the background-CPU count."""
        # a copy: the runner's stopping thread may clear `dirs` meanwhile
        markers = {('FANNODE_PROVISION=%s:%s' % (kind, d)).encode() for kind, d in list(self.dirs.items())}
        found = []
        for name in os.listdir('/proc'):
            if name.isdigit():
                try:
                    with open('/proc/%s/environ' % name, 'rb') as f:
                        if markers & set(f.read().split(b'\0')):
                            found.append(int(name))
                except OSError:
                    pass
        return found

    def stop_all(self, keep_logs: bool = False) -> list[str]:
        """Stop every server, newest first, and remove its dir unless told to keep it (for
        its logs, after a failure); the problems, one line each (none: empty)."""
        problems = []
        for kind, d in reversed(list(self.dirs.items())):
            done = subprocess.run([sys.executable, str(PROVISION), 'stop', kind, '--dir', str(d)],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if done.returncode != 0:
                out = (done.stdout + done.stderr).strip().splitlines() or ['exit %d' % done.returncode]
                problems.append('scripts/provision stop %s --dir %s failed: %s' % (kind, d, out[-1]))
            elif not keep_logs:
                shutil.rmtree(d, ignore_errors=True)
        self.dirs.clear()
        return problems


# -- the anchors' clients ----------------------------------------------------------------------

class PipeClient(Proc):
    """A client process told what to measure: commands on stdin, one JSON line back on
    stdout for each; stderr goes to its log. Started once per case, asked every round."""

    def __init__(self, procs: Procs, name: str, argv: list[str], env: dict[str, str] | None = None):
        self.name = name
        self.log_path = procs.dir / ('%s.log' % self.name)
        self.log = open(self.log_path, 'w+b')
        self.popen = subprocess.Popen(argv, env=dict(procs.env, **(env or {})), cwd=procs.dir, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self.log, start_new_session=True, text=True)
        self.pid = self.popen.pid
        self.cpus = pin(CLIENT, self.pid)  # the caller's CPU, like fannode's client in the bench process
        procs.procs.append(self)  # stopped by PID with the rest
        procs.note_pin(self.name, self.cpus)

    def ask(self, command: str | None, timeout: float) -> dict[str, Any]:
        """Send `command` (None: just read, for the "ready" line) and wait for the answer."""
        if command is not None:
            self.popen.stdin.write(command + '\n')
            self.popen.stdin.flush()
        if not select.select([self.popen.stdout], [], [], timeout)[0]:
            raise BenchError('%s did not answer %s within %gs (last output: %s)'
                             % (self.name, repr(command) if command else 'ready', timeout, self.last_line()))
        line = self.popen.stdout.readline()
        if not line:
            raise BenchError('%s exited with %s: %s' % (self.name, self.popen.wait(5), self.last_line()))
        answer = json.loads(line)
        if 'error' in answer:
            raise BenchError('%s: %s' % (self.name, answer['error']))
        return answer

    def rate(self, command: str, timeout: float) -> float:
        """Calls per second of a `sequential` or `in_flight` command."""
        answer = self.ask(command, timeout)
        return answer['calls'] / answer['seconds']

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.popen.stdin.close()  # end of input: it closes its connection and exits
            self.popen.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        super().stop(timeout)


class AnchorClient(PipeClient):
    """An anchor's client in the anchors venv (bench/services/anchor_client.py)."""

    def __init__(self, procs: Procs, kind: str, python: str, address: str):
        super().__init__(procs, '%s-client' % kind, [python, str(BENCH / 'services' / 'anchor_client.py'), kind,
                                                     address])


# -- the anchors venv -------------------------------------------------------------------------

def venv_python() -> Path:
    return VENV / 'bin' / 'python'


def ready() -> bool:
    try:
        return venv_python().exists() and STAMP.read_text().split() == PINS
    except OSError:
        return False


def ensure_venv(say: Callable[[str], None]) -> Path:
    """bench/.anchors-venv with PINS installed: made once (about 40 s), then reused while
    PINS stay the same. Its Python is the one .venv was made from (3.11)."""
    if ready():
        return venv_python()
    started = time.monotonic()
    base = Path(sys.base_prefix) / 'bin' / 'python3'
    if not base.exists():
        base = Path(shutil.which('python3') or 'python3')
    if VENV.exists():
        say('anchors venv: %s is out of date or incomplete; making it again' % VENV.relative_to(ROOT))
        shutil.rmtree(VENV)
    say('anchors venv: %s -m venv %s' % (base, VENV.relative_to(ROOT)))
    _run([str(base), '-m', 'venv', str(VENV)], 'python -m venv', say)
    say('anchors venv: pip install %s (about 30 s)' % ' '.join(PINS))
    _run([str(venv_python()), '-m', 'pip', 'install', '--progress-bar', 'off', *PINS], 'pip install', say)
    check = subprocess.run([str(venv_python()), '-W', 'ignore', '-c', 'import nameko.standalone.rpc, zerorpc'],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise BenchError('the anchors venv cannot import nameko and zerorpc: %s'
                         % (check.stderr.strip().splitlines() or ['?'])[-1])
    STAMP.write_text('\n'.join(PINS) + '\n')
    say('anchors venv: ready in %.0f s' % (time.monotonic() - started))
    return venv_python()


def _run(argv: list[str], what: str, say: Callable[[str], None]) -> None:
    """Run `argv`, passing on the lines that show progress (pip's Collecting/Installing)."""
    popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    tail: list[str] = []
    try:
        for line in popen.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-20:]
            if line.startswith(('Collecting ', 'Installing collected', 'Successfully installed')):
                say('  ' + line)
        code = popen.wait()
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait()
    if code != 0:
        errors = [l for l in tail if 'ERROR' in l] or tail or ['exit %d' % code]
        raise BenchError('%s failed for the anchors venv: %s' % (what, errors[-1].strip()))


def main() -> int:
    try:
        python = ensure_venv(lambda line: print(line, file=sys.stderr, flush=True))
    except BenchError as e:
        print('bench failed: %s' % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print('anchors venv: %s (%s)' % (python.parent.parent.relative_to(ROOT), ', '.join(PINS)), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
