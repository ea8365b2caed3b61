from __future__ import annotations

import argparse
import sys
from typing import Any

from fannode.cli.base import Command, patch_gevent
from fannode.core.console import Console as LineConsole

BANNER = """fannode shell on %s
  proxy(service, timeout=None)  call a service: proxy('Greeting').greet(name='Joe')
  emit(type, body=None)         publish an event; returns its id
  discover()                    the services and their instance counts
  registry, client              discovery, and the RPC client behind proxy
"""


class ShellCommand(Command):
    """A Python shell on the cluster, with proxy(service, timeout=None), emit(type, body),
    discover(), registry and client:

        $ fannode shell
        >>> proxy('Greeting').greet(name='Joe')
        'Hi, Joe!'
        $ echo "print(discover())" | fannode shell

    or inside a running instance, with `container`, its interfaces by name, `proxy` and
    `emit`:

        $ fannode shell --remote Greeting        # the only instance of Greeting
        $ fannode shell --remote 1a2b3c4d        # an instance id prefix (fannode discover -i)

    --remote needs an instance started with a backdoor (FANNODE_BACKDOOR=1, `fannode
    instance --backdoor`, or `backdoor: true` in its config), on this host, run by you:
    the backdoor is a unix socket only its user can open, in the runtime directory
    ($XDG_RUNTIME_DIR/fannode, else /tmp/fannode-UID). With stdin not a terminal, lines
    are read from it without prompts or banner; the local shell exits 1 if a statement
    failed.
    """

    help = 'A Python shell with proxies to the services, or inside a running instance.'
    uses_events = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--remote', '-r', metavar='INSTANCE',
                            help='attach to the backdoor of this instance (id prefix, or a service '
                                 'with one instance)')
        parser.add_argument('--plain', action='store_true',
                            help='the standard Python console even when IPython is installed')

    def run(self, args: argparse.Namespace) -> int:
        return remote_shell(args) if args.remote else local_shell(args)


class Console(LineConsole):
    """On stdin and stderr, with input() (line editing) on a terminal; fannode's own
    errors show as one line rather than a traceback."""

    def __init__(self, names: dict[str, Any], interactive: bool):
        super().__init__(names, sys.stdin, sys.stderr, quiet=not interactive, filename='<fannode shell>')
        self.interactive = interactive
        self.failed = False

    def raw_input(self, prompt: str = '') -> str:
        return input(prompt) if self.interactive else super().raw_input(prompt)

    def runcode(self, code: Any) -> None:
        from fannode.core import trace
        trace.set_id('')  # each statement starts a trace of its own
        super().runcode(code)

    def showtraceback(self) -> None:
        from fannode.exceptions import FannodeError
        self.failed = True
        exc = sys.exc_info()[1]
        if isinstance(exc, FannodeError):
            self.write('%s: %s\n' % (type(exc).__qualname__, exc))
        else:
            super().showtraceback()

    def showsyntaxerror(self, filename: str | None = None, **kwargs: Any) -> None:
        self.failed = True
        super().showsyntaxerror(filename, **kwargs)


def local_shell(args: argparse.Namespace) -> int:
    patch_gevent()  # like an instance: proxies and the user's own I/O cooperate

    from fannode.cli import cluster
    from fannode.calls import default
    from fannode.calls.client import RpcClient

    registry = cluster.registry(args)
    client = RpcClient(registry)
    default.set_client(client)  # fannode.proxy() in the shell uses it too
    names = {'proxy': client.proxy, 'emit': _emitter(args), 'registry': registry, 'client': client,
             'discover': lambda: {name: len(i) for name, i in registry.services().items()}}
    names['discover']()  # no registry there: one line and exit 1 now, not at the first call
    interactive = sys.stdin.isatty()
    banner = BANNER % registry.url
    try:
        if interactive and not args.plain and _ipython(names, banner):
            return 0
        console = Console(names, interactive)
        console.interact(banner=banner.rstrip('\n') if interactive else '', exitmsg='')
        return 1 if console.failed and not interactive else 0
    finally:
        client.close()
        registry.close()


def _emitter(args: argparse.Namespace) -> Any:
    events: list[Any] = []  # connected on first use

    def emit(event_type: str, body: dict | None = None, delay: float | None = None) -> str:
        from fannode.core import trace
        from fannode.core.events import Event, check_body, check_type
        from fannode.events import get_events
        from fannode.exceptions import RegistryUnavailable
        from fannode.settings import resolve_events_url
        if not events:
            events.append(get_events(resolve_events_url(args.events, args.registry)))
        event = Event.new(check_type(event_type), check_body(event_type, body or {}),
                          trace.ensure_id(), 'shell')
        events[0].emit(event, delay)
        if not events[0].flush(5.0):
            raise RegistryUnavailable('the event broker at %s did not take the event within 5s'
                                      % events[0].url)
        return event.id
    return emit


def _ipython(names: dict[str, Any], banner: str) -> bool:
    try:
        import IPython
    except ImportError:
        return False
    sys.stderr.write(banner)
    IPython.start_ipython(argv=[], user_ns=names, display_banner=False)
    return True


def remote_shell(args: argparse.Namespace) -> int:
    import os
    import socket
    import threading

    from fannode.cli import cluster, targets
    from fannode.core.backdoor import ENV, HELLO, QUIET, peer_uid
    from fannode.exceptions import FannodeError

    registry = cluster.registry(args)
    try:
        info = targets.find_instance(registry, args.remote)
    finally:
        registry.close()
    name = targets.short(info)
    path = info.meta.get('backdoor')
    if not path:
        raise FannodeError('instance %s has no backdoor: start it with %s=1' % (name, ENV))
    if not isinstance(path, str):  # a TCP port: what fannode registered before the unix socket
        raise FannodeError('instance %s has a TCP backdoor (port %s), which this fannode no longer '
                           'uses: restart the instance with this version' % (name, path))
    if info.host != socket.gethostname():
        raise FannodeError('instance %s runs on host %s: its backdoor is a unix socket there; run '
                           'the shell on that host' % (name, info.host))
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(3.0)
    try:
        conn.connect(path)
        uid = peer_uid(conn)
    except OSError as e:
        conn.close()
        hint = " (it is the instance's user's: run the shell as that user)" if isinstance(e, PermissionError) else ''
        raise FannodeError('cannot reach the backdoor of instance %s at %s: %s%s'
                           % (name, path, e.strerror or e, hint)) from None
    if uid != os.getuid():  # discovery says where: anyone may register there
        conn.close()
        raise FannodeError('the backdoor of instance %s at %s is served by uid %d, not by you (uid %d): '
                           'not sending it anything' % (name, path, uid, os.getuid()))
    conn.settimeout(None)
    interactive = sys.stdin.isatty()
    conn.sendall(((HELLO if interactive else QUIET) + '\n').encode())
    threading.Thread(target=_send_input, args=(conn, interactive), daemon=True).start()
    out = sys.stdout.buffer
    with conn:  # the session's output until the instance closes it (EOF, quit())
        while True:
            data = conn.recv(65536)
            if not data:
                return 0
            out.write(data)
            out.flush()


def _send_input(conn: Any, interactive: bool) -> None:
    """stdin to the backdoor, a line at a time; at EOF, say so (half-close)."""
    import socket
    try:
        while True:
            if interactive:
                line = input() + '\n'  # the prompt came from the instance
            else:
                line = sys.stdin.readline()
                if not line:
                    break
            conn.sendall(line.encode())
    except (EOFError, OSError):
        pass
    try:
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
