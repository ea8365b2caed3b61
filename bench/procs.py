"""The processes a benchmark run starts: free ports, readiness with a deadline, and
stopping every one of them by PID (terminate, wait, then kill)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, TypeVar

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / 'bench'
FANNODE = [sys.executable, '-m', 'fannode.cli']

T = TypeVar('T')


class BenchError(Exception):
    """Something the benchmark needs did not start or failed; one line for the user."""


class Skip(Exception):
    """A component a row needs is missing (RabbitMQ, wrk, the anchors venv): the row reads
    `skipped: <why>` and the run goes on."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll `predicate` until it returns something truthy; BenchError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError('timed out after %gs waiting for %s' % (timeout, what))
        time.sleep(interval)


class Proc:
    """One subprocess, its stdout and stderr in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path):
        self.name = name
        self.log_path = cwd / ('%s.log' % name)
        self.log = open(self.log_path, 'w+b')
        # A session of its own: Ctrl-C reaches only us, and we stop children in order.
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                      stdout=self.log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def output(self) -> str:
        with open(self.log_path, 'rb') as f:
            return f.read().decode(errors='replace')

    def wait_for(self, text: str, timeout: float) -> None:
        """Wait until the log shows `text`; BenchError if the process exits or time runs out."""
        def ready() -> bool:
            if text in self.output():
                return True
            if self.popen.poll() is not None:
                raise BenchError('%s exited with %s before it was ready: %s'
                                 % (self.name, self.popen.returncode, self.last_line()))
            return False
        try:
            wait_until(ready, timeout, '%s to print %r' % (self.name, text))
        except BenchError as e:
            if self.popen.poll() is None:
                raise BenchError('%s (last output: %s)' % (e, self.last_line())) from None
            raise

    def last_line(self) -> str:
        lines = [line for line in self.output().splitlines() if line.strip()]
        return lines[-1].strip() if lines else '(no output)'

    def stop(self, timeout: float = 5.0) -> None:
        try:
            if self.popen.poll() is None:
                self.popen.terminate()
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(timeout)
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)
        self.log.close()


class Procs:
    """Starts processes in a scratch directory (`dir`, or a new one under /tmp);
    `stop_all` stops them newest first, so the instance leaves the hub before the hub goes."""

    def __init__(self, dir: Path | None = None) -> None:
        if dir is None:
            dir = Path(tempfile.mkdtemp(prefix='fannode-bench-'))
        dir.mkdir(parents=True, exist_ok=True)
        self.dir = dir
        self.procs: list[Proc] = []
        self.env = dict(os.environ, PYTHONUNBUFFERED='1',
                        PYTHONPATH=os.pathsep.join(filter(None, [
                            str(BENCH / 'services'), str(ROOT), os.environ.get('PYTHONPATH')])))
        for name in ('FANNODE_REGISTRY', 'FANNODE_EVENTS'):
            self.env.pop(name, None)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, dict(self.env, **(env or {})), self.dir)
        self.procs.append(proc)
        return proc

    def raw_server(self, port: int) -> Proc:
        return self.start('raw-server', [sys.executable, '-m', 'bench.raw_server', str(port)])

    def hub(self, url: str) -> Proc:
        return self.start('hub', [*FANNODE, 'hub', '--registry', url, '--journal', str(self.dir / 'hub.sqlite3')],
                          {'FANNODE_REGISTRY': url})

    def instance(self, url: str, config: Path) -> Proc:
        return self.start('instance', [*FANNODE, 'instance', '--registry', url, '--config', str(config)],
                          {'FANNODE_REGISTRY': url})

    def stop(self, group: list[Proc], timeout: float = 5.0) -> None:
        """Stop `group` together: SIGTERM to each, then wait for each (SIGKILL after
        `timeout`). Fifty instances stop in a second, not one after another."""
        for proc in group:
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in group:
            proc.stop(timeout)
            self.procs.remove(proc)

    def stop_all(self) -> None:
        try:
            while self.procs:
                self.procs[-1].stop()
                self.procs.pop()
        finally:  # interrupted while waiting (a second Ctrl-C): no mercy for the rest
            for proc in self.procs:
                proc.kill()
            self.procs.clear()

    def cleanup(self) -> None:
        """Remove the logs (kept when the run failed, to be read)."""
        shutil.rmtree(self.dir, ignore_errors=True)
