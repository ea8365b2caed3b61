from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fannode.cli.base import Command, patch_gevent

if TYPE_CHECKING:
    from fannode.core.config import Config


# What an instance imports on its way to serving, some of it inside functions: a preloaded
# worker that imported any of it itself would pay for it again, in time and in memory.
PRELOADED = ('fannode.calls.default', 'fannode.calls.transport', 'fannode.cli.exitcodes',
             'fannode.cli.output', 'fannode.core.addresses', 'fannode.core.backdoor',
             'fannode.core.jsonable', 'fannode.core.logsetup', 'fannode.core.rundir',
             'fannode.events.default', 'fannode.logs.ship', 'fannode.runtime.container',
             'fannode.web.sockets', 'gevent.server')


class InstanceCommand(Command):
    """Run one service instance (one process) from a service config file.

    The config names the interfaces to serve:

        interfaces:
          Greeting:
            class: greeting:Greeting   # module:Class, importable from PYTHONPATH or here

    The instance registers in discovery once it is ready and leaves it on SIGTERM or
    Ctrl-C, finishing running requests within --stop-timeout.
    """

    help = 'Run a single service instance (one process).'
    uses_events = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--config', '-c', required=True, metavar='FILE', help='service config (YAML)')
        parser.add_argument('--ip', help='address to serve RPC on; 0.0.0.0 listens everywhere and registers '
                            'the address on the route to the registry (default: $FANNODE_IP, rpc.ip, 127.0.0.1)')
        parser.add_argument('--port', type=int, help='RPC port (default: rpc.port or a free one)')
        parser.add_argument('--loglevel', '-l', default='INFO', metavar='LEVEL',
                            choices=['DEBUG', 'INFO', 'WARNING', 'ERROR', 'debug', 'info', 'warning', 'error'],
                            help='log level (default: INFO)')
        parser.add_argument('--socket', action='append', default=[], metavar='NAME=FD',
                            help='a listening socket inherited from the node (also $FANNODE_SOCKETS)')
        parser.add_argument('--stop-timeout', type=float, default=5.0, metavar='SECONDS',
                            help='how long running requests may take to finish on stop (default: 5)')
        parser.add_argument('--backdoor', action='store_true',
                            help='serve a Python console for `fannode shell --remote` on a unix socket only your user may open '
                                 '(also $FANNODE_BACKDOOR=1 or `backdoor: true` in the config)')
        parser.add_argument('--reload', action='store_true',
                            help='run the instance again whenever a Python file changes in the directories '
                                 'its interfaces come from (for development)')

    def config(self, args: argparse.Namespace) -> Config:
        """The service config to run: the file --config names (`fannode gateway` builds one)."""
        from fannode.core.config import load_config
        return load_config(args.config)

    def preload(self, args: argparse.Namespace) -> None:
        """What `run` imports, done once in a template process (fannode.cli.forkserver)
        whose forks then run `run` without paying for it again."""
        patch_gevent()
        import os
        import sys

        import importlib
        for module in PRELOADED:
            importlib.import_module(module)
        from fannode.backends import load_backend, registered
        from fannode.core import plugins
        from fannode.core.config import import_object
        from fannode.settings import resolve_events_url, resolve_url

        sys.path.insert(0, os.getcwd())
        registry = resolve_url('registry', args.registry)
        load_backend('fannode.registry', registry)
        load_backend('fannode.events', resolve_events_url(args.events, args.registry))
        for group in ('fannode.transports', 'fannode.config'):
            registered(group)
        plugins.installed()
        for section in (self.config(args).to_dict().get('interfaces') or {}).values():
            if isinstance(section, dict) and isinstance(section.get('class'), str):
                import_object(section['class'])
        sys.path.remove(os.getcwd())  # run puts it back

    def run(self, args: argparse.Namespace) -> int:
        import os
        if getattr(args, 'reload', False) and not os.environ.get('FANNODE_RELOAD_CHILD'):
            from fannode.cli import rerun  # before gevent: this process only watches and re-runs
            config = self.config(args)
            return rerun.run(config, ','.join(config.get('interfaces') or []) or args.config, args.stop_timeout)
        patch_gevent()  # so service code's sockets and sleeps cooperate with gevent

        import os
        import signal
        import sys

        import gevent
        import gevent.event

        from fannode.runtime.container import ServiceContainer
        from fannode.core import logsetup
        from fannode.events import default as events_default
        from fannode.logs.ship import instance_shipper
        from fannode.web.sockets import inherited_sockets
        from fannode.calls import default
        from fannode.settings import resolve_events_url, resolve_url

        sys.path.insert(0, os.getcwd())
        if args.backdoor:
            os.environ['FANNODE_BACKDOOR'] = '1'  # read where the container starts
        config = self.config(args)
        container = ServiceContainer(config, resolve_url('registry', args.registry), args.ip, args.port,
                                     events=resolve_events_url(args.events, args.registry),
                                     sockets={**inherited_sockets(), **inherited_sockets(','.join(args.socket))})
        shipper = None if logsetup.json_mode() else instance_shipper(container.registry.url)
        logsetup.setup(args.loglevel, ','.join(container.interfaces), container.id[:8],
                   ship=shipper.add if shipper else None, capture_print=True)
        default.set_client(container.client)
        events_default.set_events(container.events)
        stop = gevent.event.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, stop.set)
        try:
            container.start()
        except BaseException:
            container.stop(timeout=0)
            raise
        stop.wait()
        container.stop(args.stop_timeout)
        if shipper is not None:
            shipper.close()  # the last lines, "stopped" among them
        return 0
