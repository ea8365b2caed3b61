"""Preloaded blocks: one template process per block (fannode.cli.forkserver) that has
imported the service once and forks each of the block's processes on request.

The node is a child subreaper (PR_SET_CHILD_SUBREAPER), so a worker the template forks
through a short-lived middle process becomes the node's child: circus reaps it, signals
its group and reads its output as it does for any process it started (fannode.node.forked).
The node starts templates early (beside the hub) so their imports overlap its start, keeps
one per block spec, and lets one go once no watcher uses it. Whatever goes wrong with a
template (it failed to import, died, answered late, or its service's code changed on disk),
the process is started the usual way and the node says why once; a fresh template is
started for the next one.
"""
from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from fannode.node.orphans import die_with

PR_SET_CHILD_SUBREAPER = 36
READY_WAIT = 15.0   # seconds a first fork waits for the template's imports
FORK_WAIT = 5.0     # seconds for one fork's answer
MAX_ANSWER = 4096
# not `python -P -m ...`: -P would be in every worker's sys.flags, and so passed on to the
# Pythons it starts (multiprocessing); the node's directory (which may hold a `fannode`
# directory: its runtime files) is taken off sys.path before fannode is imported
BOOT = ("import sys\nif sys.path and sys.path[0] == '':\n    del sys.path[0]\n"
        "from fannode.cli.forkserver import boot\nsys.exit(boot(sys.argv[1:]))")
RETRY_BROKEN = 30.0  # seconds before a service that could not be preloaded is tried again


class TemplateError(Exception):
    pass


class TemplateBusy(TemplateError):
    """Still importing: this process is started with exec, the template kept for the next."""


def become_subreaper() -> bool:
    if not sys.platform.startswith('linux'):
        return False
    return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def key_of(argv: list[str], env: dict[str, str], cwd: str, fds: tuple[int, ...]) -> tuple[Any, ...]:
    return (tuple(argv), tuple(sorted(env.items())), cwd, fds)


class Template:
    """One template process and the socket to it."""

    def __init__(self, key: tuple[Any, ...], argv: list[str], env: dict[str, str], cwd: str,
                 fds: tuple[int, ...]):
        self.key = key
        self.args = (argv, env, cwd, fds)  # to start another like it
        self.ready = False
        self.started = time.monotonic()
        self.failure: dict[str, Any] | None = None  # the answer that said it cannot fork
        self.problem = ''
        self.kind = ''  # why it failed: stale, gone, or error (it cannot preload this service)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        self.errors = tempfile.TemporaryFile()  # what it printed, for a one-line reason
        node = os.getpid()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, '-c', BOOT, str(theirs.fileno()), str(node), *argv],
                env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.errors,
                pass_fds=(theirs.fileno(), *fds), start_new_session=True, preexec_fn=die_with(node))
        finally:
            theirs.close()

    def fork(self, argv: list[str], env: dict[str, str], cwd: str, rlimits: dict[str, int],
             pipes: tuple[int, int]) -> int:
        """A new worker's pid; TemplateBusy while it still imports (never waited for here:
        this runs in the node's loop), TemplateError when this template cannot make one."""
        state = self.poll()
        if state is None:
            raise TemplateBusy('still importing')
        if not state:
            raise TemplateError(self._why(self.failure or {}))
        request = json.dumps({'argv': argv, 'env': env, 'cwd': cwd, 'rlimits': rlimits}).encode()
        try:
            socket.send_fds(self.sock, [request], list(pipes))
        except OSError as e:
            raise TemplateError(self._why({'error': 'gone (%s)' % e.strerror})) from None
        answer = self._answer(FORK_WAIT)
        if 'pid' not in answer:
            raise TemplateError(self._why(answer))
        return int(answer['pid'])

    def poll(self) -> bool | None:
        """True once its imports are done, None while they go on (for up to READY_WAIT),
        False when it failed (its answer kept for fork to say why). Never blocks."""
        if self.ready:
            return True
        if self.failure is None and self.alive:
            answer = self._answer(0.0)
            if answer.get('busy'):
                if time.monotonic() - self.started < READY_WAIT:
                    return None
                answer = {'error': 'no answer in %gs' % READY_WAIT}
            if 'ready' in answer:
                self.ready = True
                return True
            self.failure = answer
        return False

    def _answer(self, timeout: float) -> dict[str, Any]:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(MAX_ANSWER)
        except socket.timeout:
            return {'error': 'no answer in %gs' % timeout}
        except BlockingIOError:  # a poll (timeout 0) of one still importing
            return {'busy': True}
        except OSError as e:
            return {'error': 'gone (%s)' % e.strerror}
        if not data:
            return {'error': 'gone'}
        try:
            answer = json.loads(data)
        except ValueError:
            return {'error': 'a bad answer'}
        return answer if isinstance(answer, dict) else {'error': 'a bad answer'}

    def _why(self, answer: dict[str, Any]) -> str:
        self.problem = ('its service changed on disk' if answer.get('stale') else
                        str(answer.get('error') or 'a bad answer'))
        # killed or hung once it had imported the service: another will do; failing before that,
        # the service cannot be preloaded (for a while, fannode.node.preload.Pool.failed)
        self.kind = ('stale' if answer.get('stale') else 'gone' if self.ready and
                     self.problem.startswith(('gone', 'no answer')) else 'error')
        if self.problem.startswith('gone'):
            last = self._last_line()
            self.problem += (': ' + last) if last else ''
        self.close()
        return self.problem

    def _last_line(self) -> str:
        try:
            self.errors.seek(0)
            lines = self.errors.read()[-2000:].decode(errors='replace').strip().splitlines()
        except (OSError, ValueError):
            return ''
        return lines[-1][:200] if lines else ''

    @property
    def alive(self) -> bool:
        return self.sock.fileno() >= 0

    def close(self) -> None:
        """Closing the socket ends it; SIGKILL is for one that does not read."""
        if self.sock.fileno() >= 0:
            self.sock.close()
        self.errors.close()
        if self.proc.poll() is None:
            try:
                self.proc.wait(0.5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(2.0)


class Pool:
    """The node's templates, one per (command line, environment, directory, sockets)."""

    def __init__(self) -> None:
        self.templates: dict[tuple[Any, ...], Template] = {}
        self.broken: dict[tuple[Any, ...], float] = {}  # key → when to try preloading it again
        self.subreaper: bool | None = None
        self.said: set[str] = set()

    def get(self, argv: list[str], env: dict[str, str], cwd: str, fds: tuple[int, ...]) -> Template | None:
        if self.subreaper is None:
            self.subreaper = become_subreaper()
        if not self.subreaper:
            return None
        key = key_of(argv, env, cwd, fds)
        if self.broken.get(key, 0.0) > time.monotonic():
            return None
        template = self.templates.get(key)
        if template is None or not template.alive:
            template = self.templates[key] = Template(key, argv, env, cwd, fds)
        return template

    def failed(self, block: str, template: Template) -> str | None:
        """A template that could not fork: replaced now if it went stale or was killed; if
        it could not preload the service, not tried again for a while (each try costs an
        import of everything). Its reason, the first time a block meets it."""
        if self.templates.get(template.key) is template:
            del self.templates[template.key]
            if template.kind in ('stale', 'gone'):
                self.templates[template.key] = Template(template.key, *template.args)
            else:
                self.broken[template.key] = time.monotonic() + RETRY_BROKEN
        said = '%s: %s' % (block, template.problem)
        if said in self.said:
            return None
        self.said.add(said)
        return said

    def keep(self, keys: set[tuple[Any, ...]]) -> None:
        """Close the templates no watcher uses any more."""
        for key in list(self.templates):
            if key not in keys:
                self.templates.pop(key).close()

    def close(self) -> None:
        self.keep(set())
