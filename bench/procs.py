"""The processes a benchmark run starts: free ports, readiness with a deadline, the CPUs
each may run on (`pin`), their memory (`memory`), and stopping every one of them by PID
(terminate, wait, then kill)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / 'bench'
FANNODE = [sys.executable, '-m', 'fannode.cli']

T = TypeVar('T')
MiB = 1024 * 1024

# -- CPU pinning ------------------------------------------------------------------------------
# Where the scheduler puts a client and its server moves a ratio by 2× on two cores (the raw
# REQ/REP anchor: 7,000 to 19,000 calls/s), so every pair runs on fixed CPUs, the anchor's
# exactly as fannode's: the caller (this process, wrk, an anchor's client, a load
# generator) on CLIENT, the server measured on SERVER, brokers (hub, RabbitMQ) beside the
# caller, where the sequential loops leave room; ANY is every CPU (processes that start
# by the dozen, like a node's instances).
CLIENT, SERVER, BROKER, ANY = 'client', 'server', 'broker', 'any'
CPUS = sorted(os.sched_getaffinity(0))  # read once: this process gets pinned later
PINNING = len(CPUS) > 1  # False: one CPU (nothing to choose), or --no-pin


def cpus_for(role: str, index: int = 0) -> list[int]:
    """The CPUs of `role`; `index` spreads servers of one kind (the second of two web
    servers) over the CPUs from the last one down."""
    if not PINNING or role == ANY:
        return CPUS
    if role == SERVER:
        return [CPUS[(len(CPUS) - 1 - index) % len(CPUS)]]
    if role == BROKER and len(CPUS) > 2:
        return [CPUS[2]]
    return [CPUS[0]]  # CLIENT, and BROKER on two CPUs


def pin(role: str, pid: int | None = None, index: int = 0) -> list[int]:
    """Pin every thread of `pid` (None: this process) to the CPUs of `role`; the CPUs.
    Threads and children it starts later inherit them. With pinning off, ANY is applied
    (it undoes an inherited pin). `preexec_fn=lambda: pin(CLIENT)` pins a program that
    starts threads at once (wrk) before it runs."""
    cpus = cpus_for(role, index)
    pid = os.getpid() if pid is None else pid
    try:
        tids = [int(t) for t in os.listdir('/proc/%d/task' % pid)]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:  # a thread that just ended, or the process itself
            pass
    return cpus


def pinning() -> str:
    """The layout, for the caption."""
    if not PINNING or len(CPUS) < 2:
        return 'CPU pinning off (%s)' % ('1 CPU' if len(CPUS) < 2 else '--no-pin')
    return 'pinned: callers on CPU %s, servers on CPU %s, hub and RabbitMQ on CPU %s' % (
        cpus_for(CLIENT)[0], cpus_for(SERVER)[0], cpus_for(BROKER)[0])


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of process `pid` in MiB: {'rss': ..., 'pss': ..., 'uss': ...}.
    RSS counts every page mapped, shared or not; PSS divides each shared page by the
    processes sharing it (a preloaded fork's instances sum to the machine's use); USS is
    what the process alone holds, what its exit would free. psutil's
    memory_full_info() (reads /proc/<pid>/smaps_rollup, ~1 ms). BenchError if it exited."""
    try:
        m = psutil.Process(pid).memory_full_info()
    except psutil.NoSuchProcess:
        raise BenchError('pid %d exited before its memory was read' % pid) from None
    return {'rss': m.rss / MiB, 'pss': getattr(m, 'pss', m.uss) / MiB, 'uss': m.uss / MiB}


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


def side_by_side(calls: list[Callable[[], None]]) -> None:
    """Run `calls` in threads of their own and wait for all; the first error is raised."""
    errors: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        try:
            call()
        except BaseException as e:  # raised again below, in the caller's thread
            errors.append(e)
    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:  # interrupted: they end what they started first, so that all of it is stopped
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


class Proc:
    """One subprocess, its stdout and stderr in a log file."""
    last = False  # Procs.stop_all stops it after the others (a hub)
    grace = 5.0  # seconds from SIGTERM to SIGKILL at least (a node stopping its children: more)

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, cpu: str = ANY,
                 index: int = 0):
        self.name = name
        self.log_path = cwd / ('%s.log' % name)
        self.log = open(self.log_path, 'w+b')
        # A session of its own: Ctrl-C reaches only us, and we stop children in order.
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                      stdout=self.log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        self.pid = self.popen.pid
        self.cpus = pin(cpu, self.pid, index)  # before its interpreter is up: no thread escapes

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
        self.pinned: dict[str, list[int]] = {}  # process name → its CPUs, when pinned
        self.env = dict(os.environ, PYTHONUNBUFFERED='1',
                        PYTHONPATH=os.pathsep.join(filter(None, [
                            str(BENCH / 'services'), str(ROOT), os.environ.get('PYTHONPATH')])))
        for name in ('FANNODE_REGISTRY', 'FANNODE_EVENTS'):
            self.env.pop(name, None)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, cpu: str = ANY,
              index: int = 0) -> Proc:
        """Start `argv` pinned to the CPUs of `cpu` (see `pin`; ANY: every CPU)."""
        proc = Proc(name, argv, dict(self.env, **(env or {})), self.dir, cpu, index)
        self.procs.append(proc)
        self.note_pin(name, proc.cpus)
        return proc

    def note_pin(self, name: str, cpus: list[int]) -> None:
        """Record where `name` ran, for the run's JSON (pinned processes only)."""
        if PINNING and cpus != CPUS:
            key, n = name, 1
            while key in self.pinned:
                n += 1
                key = '%s-%d' % (name, n)
            self.pinned[key] = cpus

    def raw_server(self, port: int, cpu: str = SERVER) -> Proc:
        return self.start('raw-server', [sys.executable, '-m', 'bench.raw_server', str(port)], cpu=cpu)

    def hub(self, url: str, cpu: str = ANY) -> Proc:
        hub = self.start('hub', [*FANNODE, 'hub', '--registry', url, '--journal', str(self.dir / 'hub.sqlite3')],
                         {'FANNODE_REGISTRY': url}, cpu)
        hub.last = True  # stop_all: after its instances, which leave it as they stop
        return hub

    def instance(self, url: str, config: Path, cpu: str = ANY) -> Proc:
        return self.start('instance', [*FANNODE, 'instance', '--registry', url, '--config', str(config)],
                          {'FANNODE_REGISTRY': url}, cpu)

    def stop(self, group: list[Proc], timeout: float = 5.0) -> None:
        """Stop `group` together: SIGTERM to each, then wait for each (SIGKILL after
        `timeout`). Fifty instances stop in a second, not one after another."""
        for proc in group:
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in group:
            proc.stop(max(timeout, proc.grace))
            self.procs.remove(proc)

    def stop_all(self) -> None:
        """Everything but the hubs together (an instance drains for 0.5 s when it stops:
        one after another, a case's teardown took seconds), then the hubs, newest first."""
        try:
            self.stop([proc for proc in self.procs if not proc.last])
            while self.procs:
                self.procs[-1].stop(self.procs[-1].grace)
                self.procs.pop()
        finally:  # interrupted while waiting (a second Ctrl-C): no mercy for the rest
            for proc in self.procs:
                proc.kill()
            self.procs.clear()

    def cleanup(self) -> None:
        """Remove the logs (kept when the run failed, to be read)."""
        shutil.rmtree(self.dir, ignore_errors=True)
