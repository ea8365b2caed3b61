from __future__ import annotations

import argparse

from fannode.cli.base import Command

# These words are subcommands; anything else is a config file to print (`./get` is the file).
ACTIONS = {'get': (1, 1), 'set': (2, 2), 'delete': (1, 1), 'list': (0, 1), 'watch': (1, None)}


class ConfigCommand(Command):
    """Shared config of the cluster, kept where its registry is (the hub, ZooKeeper):

        fannode config get KEY [--json]        the value (exit 1 if there is none)
        fannode config set KEY VALUE [--string] [--json]
        fannode config delete KEY [--json]
        fannode config list [PREFIX] [--json]  keys and values
        fannode config watch KEY... [--json]   print each change until Ctrl-C

    VALUE is JSON if it parses (42, true, '{"a": 1}', '"quoted"'), else a string;
    --string takes it as a string always. Options go after the operands. Keys are
    dotted words: greeting.style.

    `fannode config FILE [--json]` prints a config file as fannode reads it, with its
    ${VAR:-default} references resolved. The words above take precedence: a file named
    like one is `./get`.
    """

    help = 'Get, set, list and watch shared config; or print a config file.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('words', nargs='+', metavar='ACTION|FILE', help='get, set, delete, list, watch; '
                            'or a config file to print')
        parser.add_argument('--json', action='store_true', help='print JSON')
        parser.add_argument('--string', action='store_true', help='set: take VALUE as a string, never as JSON')

    def run(self, args: argparse.Namespace) -> int:
        from fannode.exceptions import UsageError

        action, operands = args.words[0], args.words[1:]
        if action not in ACTIONS:
            if operands:
                raise UsageError('expected one config FILE, or an action (%s), got %s'
                                 % (', '.join(ACTIONS), ' '.join(args.words)))
            return print_file(action, args.json)
        low, high = ACTIONS[action]
        if len(operands) < low or (high is not None and len(operands) > high):
            usage = {'get': 'KEY', 'set': 'KEY VALUE', 'delete': 'KEY', 'list': '[PREFIX]', 'watch': 'KEY...'}
            raise UsageError('usage: fannode config %s %s' % (action, usage[action]))

        from fannode.sharedconfig import check_key, get_shared_config
        from fannode.settings import resolve_url

        if action != 'list':
            for key in operands[:1] if action == 'set' else operands:
                check_key(key)  # before connecting: a typo is exit 2 even with no cluster
        config = get_shared_config(resolve_url('registry', args.registry))
        try:
            return getattr(self, 'run_' + action)(config, operands, args)
        finally:
            config.close()

    def run_get(self, config, operands: list[str], args: argparse.Namespace) -> int:
        from fannode.cli import output
        value = config.get(operands[0])
        if value is None:
            raise missing(operands[0])
        if args.json:
            output.print_json(value)
        else:
            output.print_value(value)
        return 0

    def run_set(self, config, operands: list[str], args: argparse.Namespace) -> int:
        import json
        key, text = operands
        value = text
        if not args.string:
            try:
                value = json.loads(text)
            except ValueError:
                pass  # not JSON: the string as typed
        config.set(key, value)
        if args.json:
            from fannode.cli import output
            output.print_json({'key': key, 'value': value})
        return 0

    def run_delete(self, config, operands: list[str], args: argparse.Namespace) -> int:
        if not config.delete(operands[0]):
            raise missing(operands[0])
        if args.json:
            from fannode.cli import output
            output.print_json({'key': operands[0], 'deleted': True})
        return 0

    def run_list(self, config, operands: list[str], args: argparse.Namespace) -> int:
        from fannode.cli import output
        found = {}
        for key in config.keys(operands[0] if operands else ''):
            value = config.get(key)
            if value is not None:  # deleted since the listing
                found[key] = value
        if args.json:
            output.print_json(found)
        elif not found:
            output.err.print('no config keys')
        else:
            for key, value in found.items():
                print('%s = %s' % (key, output.to_json(value)), flush=True)
        return 0

    def run_watch(self, config, operands: list[str], args: argparse.Namespace) -> int:
        import signal

        import gevent
        import gevent.event

        from fannode.cli import output

        def show(key: str, value: object) -> None:
            if args.json:
                output.print_json({'key': key, 'value': value})
            elif value is None:
                print('%s deleted' % key, flush=True)
            else:
                print('%s = %s' % (key, output.to_json(value)), flush=True)

        for key in dict.fromkeys(operands):
            config.subscribe(key, show)
        output.err.print('watching %s (Ctrl-C to stop)' % ', '.join(operands))
        stop = gevent.event.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, stop.set)
        stop.wait()
        return 0


def missing(key: str) -> Exception:
    from fannode.exceptions import FannodeError
    return FannodeError("no config key '%s'" % key)


def print_file(path: str, as_json: bool) -> int:
    import yaml

    from fannode.cli import output
    from fannode.core.config import load_config

    data = load_config(path).to_dict()
    if as_json:
        output.print_json(data)
    else:
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end='')
    return 0
