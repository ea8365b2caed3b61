"""What the chaos tests share: how many inputs each fuzz test runs, real processes that
are killed by PID whatever happens, and a blocking DEALER that talks the RPC frame.

Not a conftest.py: test modules all over tests/ do `from conftest import ...` meaning
tests/conftest.py, and a second conftest module would take that name from them.

    FANNODE_FUZZ_EXAMPLES=10000 .venv/bin/python -m pytest tests/chaos -p no:randomly
"""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
import zmq
from hypothesis import HealthCheck, settings

from conftest import FANNODE, ROOT, TESTS, free_port, wait_until
from fannode.core import serial, wire

EXAMPLES = int(os.environ.get('FANNODE_FUZZ_EXAMPLES') or 100)
# Each fuzz test may take its time when asked for many inputs: pytest.ini's 120 s per test
# would cut a long run short.
LONG = pytest.mark.timeout(max(120, int(EXAMPLES * 0.15)))


def fuzz(share: float = 1.0) -> settings:
    """Hypothesis settings for one fuzz test: `share` of FANNODE_FUZZ_EXAMPLES (the slow
    endpoints run fewer at the default, all of them on a long run)."""
    count = EXAMPLES if 'FANNODE_FUZZ_EXAMPLES' in os.environ else max(10, int(EXAMPLES * share))
    return settings(max_examples=count, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much,
                                           HealthCheck.large_base_example])


CONTEXT = zmq.Context()  # plain blocking pyzmq: these tests read with poll(), not gevent
_ids = itertools.count(10 ** 12)


def next_id() -> int:
    return next(_ids)


class Procs:
    """Processes a test starts, each with its log; `cleanup` SIGKILLs every one still
    running and every descendant seen, by PID (psutil checks the start time, so a reused
    PID is never hit)."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.popens: list[subprocess.Popen] = []
        self.known: dict[int, psutil.Process] = {}

    def spawn(self, args: list[str], name: str, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen:
        log = open(self.dir / ('%s-%d.log' % (name, len(self.popens))), 'w+')
        proc = subprocess.Popen(args, env=env, cwd=cwd or self.dir, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        proc.log = log  # type: ignore[attr-defined]
        self.popens.append(proc)
        self.remember(proc.pid)
        return proc

    def remember(self, pid: int) -> None:
        """`pid` and whatever it runs now, to be killed at the end."""
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                self.known.setdefault(p.pid, p)
        except psutil.Error:
            pass

    def cleanup(self) -> None:
        for popen in self.popens:
            self.remember(popen.pid)
        for proc in self.known.values():
            try:
                if proc.is_running():
                    proc.kill()
            except psutil.Error:
                pass
        for popen in self.popens:
            try:
                popen.wait(10)
            except subprocess.TimeoutExpired:
                pass
            popen.log.close()


def output(proc: subprocess.Popen) -> str:
    proc.log.flush()  # type: ignore[attr-defined]
    with open(proc.log.name, errors='replace') as f:  # type: ignore[attr-defined]
        return f.read()


def base_env(tmp: Path, registry: str | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED='1', XDG_STATE_HOME=str(tmp / 'state'),
               PYTHONPATH=os.pathsep.join([str(TESTS / 'services'), str(ROOT)]))
    env.pop('FANNODE_EVENTS', None)
    env.pop('FANNODE_REGISTRY', None)
    if registry:
        env['FANNODE_REGISTRY'] = registry
    return env


class HubProcess:
    """`fannode hub` as a child, with a journal, on a port of its own."""

    def __init__(self, procs: Procs, journal: Path | None = None, port: int | None = None):
        self.procs = procs
        self.port = port or free_port()
        self.url = 'hub://127.0.0.1:%d' % self.port
        self.endpoint = 'tcp://127.0.0.1:%d' % self.port
        self.journal = journal or procs.dir / ('hub-%s.sqlite3' % uuid.uuid4().hex[:6])
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20) -> 'HubProcess':
        self.proc = self.procs.spawn([*FANNODE, 'hub', '--journal', str(self.journal)], 'hub',
                                     base_env(self.procs.dir, self.url))
        proc = self.proc
        wait_until(lambda: 'hub listening' in output(proc) or proc.poll() is not None, timeout,
                   message='the hub to listen')
        assert proc.poll() is None, 'the hub exited:\n' + output(proc)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return output(self.proc) if self.proc else ''

    def kill9(self) -> None:
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


class Dealer:
    """One DEALER connection speaking fannode frames, blocking, with deadlines. NOTIFY
    messages that arrive meanwhile are kept in `notes`."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.sock = CONTEXT.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.notes: list[wire.Message] = []

    def send(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def request(self, subject: str, body: Any = None, headers: dict | None = None) -> int:
        msg = wire.Message(wire.REQ, next_id(), subject, body, headers=headers)
        self.send(msg.encode())
        return msg.id

    def read(self, timeout: float) -> wire.Message | None:
        """The next message, or None after `timeout`; a frame no client could read fails."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        frames = self.sock.recv_multipart()
        assert len(frames) == 1, 'a message of %d frames from %s' % (len(frames), self.endpoint)
        try:
            return wire.decode(frames[0])
        except wire.ProtocolError as e:
            raise AssertionError('%s sent a frame no client can read: %s' % (self.endpoint, e)) from None

    def wait(self, id: int, timeout: float = 5.0) -> wire.Message | None:
        """The answer (REP, NACK or ERROR) to request `id`, or None when none came in time."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            msg = self.read(max(0.0, left)) if left > 0 else None
            if msg is None:
                return None
            if msg.type == wire.NOTIFY:
                self.notes.append(msg)
            elif msg.id == id and msg.type in (wire.REP, wire.NACK, wire.ERROR):
                return msg

    def call(self, subject: str, timeout: float = 5.0, **body: Any) -> Any:
        msg = self.wait(self.request(subject, body), timeout)
        assert msg is not None, '%s: no answer within %gs from %s' % (subject, timeout, self.endpoint)
        assert msg.type == wire.REP, '%s: %s %r' % (subject, wire.TYPE_NAMES[msg.type], msg.body)
        return msg.body

    def close(self) -> None:
        self.sock.close(linger=0)


def frame(subject: Any, body: Any, id: int | None = None, trace_id: Any = '', span_id: Any = '',
          deadline_ms: Any = 0, headers: Any = None, raw_body: bytes | None = None) -> tuple[int, bytes]:
    """A REQ frame with any value in any field (fannode's codec), or `raw_body` as the
    body's bytes: (its id, the frame)."""
    id = next_id() if id is None else id
    fields = [wire.VERSION, wire.REQ, id, subject, trace_id, span_id, deadline_ms,
              {} if headers is None else headers]
    tail = raw_body if raw_body is not None else serial.dumps(body)
    return id, b'\x99' + b''.join(serial.dumps(f) for f in fields) + tail


def short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '... (%d characters)' % len(text)
