"""The template process of a preloaded block (`preload:` in node.yml, fannode.node.preload).

The node starts one per block running `fannode instance`: it patches gevent, imports
fannode, the registry's backend and the service's own modules once, then waits on a unix
socket. For each process the block needs, the node sends the command line, environment,
working directory and limits, with the two pipe ends for stdout and stderr (SCM_RIGHTS).
The template forks twice: the middle process exits at once, so the worker is handed to
the node (a child subreaper) and is the node's child like any process circus starts — circus
reaps it, signals its group and reads its pipes. The worker resets what a fork must not share
(its own session, PDEATHSIG, the gevent loop; Python reseeds `random` itself) and runs the
command as `fannode instance` would, minus the imports.

A template answers `stale` and exits when a module it imported from anywhere but the
standard library (a checkout, or site-packages after `pip install -U`) has changed on disk since: the node then starts the process the usual way and
starts a fresh template, so an edited service never runs old code.

    python -c BOOT FD NODE_PID fannode instance -c greeting.yml   (BOOT: fannode.node.preload)
"""
from __future__ import annotations

import atexit
import gc
import io
import json
import os
import resource
import signal
import sys
import sysconfig
from typing import Any

PACKAGES = os.sep + 'site-packages' + os.sep  # inside the standard library's directory, yet installed
MAX_REQUEST = 1 << 20  # a command line and an environment
PR_SET_PDEATHSIG = 1
REPARENT_WAIT = 2.0  # seconds for the middle process to exit and hand the worker to the node


def main(argv: list[str]) -> int:
    channel, node_pid, command = int(argv[0]), int(argv[1]), argv[2:]
    _title('fannode preload %s' % os.environ.get('FANNODE_BLOCK', ''))  # first: ps never shows the command
    import socket
    sock = socket.socket(fileno=channel)  # before gevent: a plain blocking socket
    from fannode.cli import main as cli_main
    from fannode.cli.base import patch_gevent
    patch_gevent()
    commands = cli_main.load_commands()
    parser = cli_main.build_parser(commands)
    try:
        args = parser.parse_args(command[1:])
        commands[args.command].preload(args)  # type: ignore[attr-defined]
    except (Exception, SystemExit) as e:
        _send(sock, {'error': '%s: %s' % (type(e).__name__, e)})
        return 1
    files = _sources()
    gc.collect()
    gc.freeze()  # the imported objects stay shared: the collector never writes to them
    _send(sock, {'ready': os.getpid()})
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, MAX_REQUEST, 2)
        except OSError:
            return 0
        if not message:
            return 0  # the node closed its end
        if _sources() != files:
            _send(sock, {'stale': True})
            return 0
        try:
            request = json.loads(message)
            pid = _fork(request, fds, sock, node_pid, commands, parser)
        except Exception as e:
            _send(sock, {'error': '%s: %s' % (type(e).__name__, e)})
        else:
            _send(sock, {'pid': pid})
        finally:
            for fd in fds:
                os.close(fd)


def _send(sock: Any, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode())


def _sources() -> dict[str, tuple[int, int]]:
    """The files of the modules imported from anywhere but Python's standard library (the
    service's wherever it is installed — a checkout, or site-packages after a `pip install
    -U` — and fannode's and every other package's), with their mtime and size."""
    stdlib = tuple({os.path.join(sysconfig.get_paths()[name], '') for name in ('stdlib', 'platstdlib')})
    found = {}
    for module in list(sys.modules.values()):
        path = getattr(module, '__file__', None)
        if path and not (path.startswith(stdlib) and PACKAGES not in path):
            try:
                st = os.stat(path)
            except OSError:
                continue
            found[path] = (st.st_mtime_ns, st.st_size)
    return found


def _fork(request: dict[str, Any], fds: list[int], sock: Any, node_pid: int,
          commands: Any, parser: Any) -> int:
    from gevent.monkey import get_original
    fork, waitpid = get_original('os', 'fork'), get_original('os', 'waitpid')  # no gevent hooks
    if len(fds) != 2:
        raise ValueError('expected 2 descriptors (stdout, stderr), got %d' % len(fds))
    argv, env, cwd = list(request['argv']), dict(request['env']), str(request['cwd'])
    rlimits = {str(k): int(v) for k, v in dict(request.get('rlimits') or {}).items()}
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    middle = fork()
    if middle == 0:  # the middle process: fork the worker and go
        worker = -1
        try:
            os.close(read)
            worker = fork()
            if worker:
                os.write(write, b'%d' % worker)
        finally:
            if worker != 0:
                os._exit(0)
        os.close(write)
        _become(argv, env, cwd, rlimits, fds, sock, node_pid)
        raise Worker(argv, commands, parser)  # out of the template's frames (boot)
    os.close(write)
    try:
        answer = os.read(read, 32)
    finally:
        os.close(read)
        waitpid(middle, 0)
    if not answer:
        raise OSError('the worker could not be forked')
    return int(answer)


def _become(argv: list[str], env: dict[str, str], cwd: str, rlimits: dict[str, int], fds: list[int],
            sock: Any, node_pid: int) -> None:
    """In the worker: what a fork must not share and what exec would have set; a failure
    ends the worker (1), as a failed exec would."""
    try:
        _adopted_by(node_pid)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd, target in ((devnull, 0), (fds[0], 1), (fds[1], 2)):
            os.dup2(fd, target)
        os.close(devnull)  # fds: main closes them, as in the template
        sock.close()
        for name, value in rlimits.items():  # as circus sets them: soft = hard
            resource.setrlimit(getattr(resource, 'RLIMIT_%s' % name.upper()), (value, value))
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import gevent
        gevent.reinit()
        atexit.register(_flush_at_exit)  # first registered: runs after the service's own
        _title(' '.join(argv))
        sys.argv = argv
    except BaseException:
        import traceback
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


class Worker(BaseException):
    """Raised in a new worker, caught by boot: the command then runs outside every frame of
    the template, and the worker ends through the interpreter's exit as an exec'd Python
    does (sys.exit's message, an uncaught error through sys.excepthook, KeyboardInterrupt's
    status, non-daemon threads waited for, atexit), not with os._exit."""

    def __init__(self, argv: list[str], commands: Any, parser: Any):
        super().__init__()
        self.argv, self.commands, self.parser = argv, commands, parser

    def run(self) -> int:
        from fannode.cli import main as cli_main
        return cli_main.run(self.argv[1:], self.commands, self.parser)


def boot(argv: list[str]) -> int:
    """The template's main; in a worker, the command's."""
    try:
        return main(argv)
    except Worker as e:
        worker = e.with_traceback(None)  # the template's frames go: what they held is freed as run's would be
    return worker.run()


def _flush_at_exit() -> None:
    """Flush every file still open. A file a service left open is flushed when the objects
    holding it are freed; in a worker those objects end in reference cycles, which the
    collector finalizes in no set order, and a text file finalized after its own buffer
    loses what it held (CPython bpo-17852). What the template froze stays frozen: letting
    the collector see it would copy the template's whole heap into each worker as it exits
    (0.3 s more to stop 10 workers)."""
    for obj in gc.get_objects():  # the young generations: the objects made since the fork
        if isinstance(obj, (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom)):
            try:
                if not obj.closed:
                    obj.flush()
            except Exception:  # a file in a bad state: its own close will say so, or not
                pass


def _adopted_by(node_pid: int) -> None:
    """Wait until the middle process is gone and the node is our parent, then ask to die
    with it (PR_SET_PDEATHSIG fires when the parent changes, so not before)."""
    import ctypes
    import time
    deadline = time.monotonic() + REPARENT_WAIT
    while os.getppid() != node_pid:
        if time.monotonic() > deadline:
            os._exit(1)
        time.sleep(0.0005)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != node_pid:  # the node died meanwhile
        os._exit(1)


def _title(text: str) -> None:
    """What ps shows: the worker's own command line, not the template's."""
    try:
        import setproctitle
    except ImportError:
        return
    setproctitle.setproctitle(text)


if __name__ == '__main__':
    sys.exit(boot(sys.argv[1:]))
