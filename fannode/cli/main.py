"""`fannode`: the entry point that finds the commands and runs one."""
from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from fannode.cli.base import Command


def load_commands() -> dict[str, Command]:
    commands = {}
    for ep in entry_points(group='fannode.commands'):
        try:
            command = ep.load()()
        except Exception as e:  # a broken plugin must not take the other commands down
            sys.stderr.write('warning: command %r from %s cannot load: %s: %s\n'
                             % (ep.name, ep.value, type(e).__name__, e))
            continue
        command.name = ep.name
        commands[ep.name] = command
    return dict(sorted(commands.items()))


def build_parser(commands: dict[str, Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='fannode', description='Run, find and call fannode services. '
                                    '`fannode list` shows the commands, `fannode help CMD` one of them.')
    parser.add_argument('--version', action='version', version='fannode ' + _version())
    registry, events = cluster_options(False), cluster_options(True)
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, command in commands.items():
        parents = [events] if command.uses_events else [registry] if command.uses_cluster else []
        sub = subparsers.add_parser(name, help=command.help, description=command.__doc__ or command.help,
                                    parents=parents,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_arguments(sub)
    return parser


def cluster_options(with_events: bool) -> argparse.ArgumentParser:
    """--registry for every command that talks to the cluster; --events for those that
    emit or consume events."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group('cluster')
    group.add_argument('--registry', metavar='URL',
                       help='discovery URL (default: $FANNODE_REGISTRY, then registry: in ./node.yml, '
                            'then hub://127.0.0.1:4010)')
    if with_events:
        group.add_argument('--events', metavar='URL',
                           help='event broker URL (default: $FANNODE_EVENTS, then events: in ./node.yml, '
                                'then the hub the registry names, then hub://127.0.0.1:4010)')
    return parent


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


def run(argv: list[str] | None = None, commands: dict[str, Command] | None = None,
        parser: argparse.ArgumentParser | None = None) -> int:
    """Run one command; a preloaded worker (fannode.cli.forkserver) passes the commands and
    parser its template made, rather than read every package's entry points again."""
    commands = commands if commands is not None else load_commands()
    parser = parser if parser is not None else build_parser(commands)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    args.parser = parser
    args.commands = commands
    from fannode.cli import exitcodes
    from fannode.exceptions import FannodeError
    try:
        return commands[args.command].run(args) or 0
    except FannodeError as e:
        from fannode.cli import output  # rich: not imported by a command that prints JSON
        # one table for every command (docs/cli.md); a plugin's command may have its own
        exit_code = getattr(commands[args.command], 'exit_code', exitcodes.for_error)
        code = exit_code(e)
        output.error(str(e))
        if getattr(args, 'json', False):  # a script reading stdout gets JSON either way
            output.print_json(exitcodes.json_error(e, code))
        return code
    except KeyboardInterrupt:
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        return 0


def _version() -> str:
    from fannode import __version__
    return __version__
