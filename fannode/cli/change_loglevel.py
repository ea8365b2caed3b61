from __future__ import annotations

import argparse

from fannode.cli.base import Command


class ChangeLoglevelCommand(Command):
    """Change the log level of every instance of a service while it runs:

        fannode change-loglevel Greeting DEBUG --period 60   # DEBUG for a minute
        fannode change-loglevel Greeting WARNING --logger fannode.web.access

    Each instance is called directly (its built-in change_loglevel method), and one
    line per instance shows the change: instance id, pid, logger, old -> new level.
    Only a logger the instance already has may be changed (or the root one); a name it
    does not know is refused, on that instance, with a line saying so. An instance that
    does not answer, or refuses, is reported, and the command exits 1.
    """

    help = 'Change the log level of every instance of a service at runtime.'

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('service', metavar='SERVICE')
        parser.add_argument('level', metavar='LEVEL', help='DEBUG, INFO, WARNING, ERROR or CRITICAL')
        parser.add_argument('--logger', default='', metavar='NAME',
                            help='the logger to change, one the instances have, e.g. fannode.web.access '
                                 '(default: the root logger)')
        parser.add_argument('--period', type=float, metavar='SECONDS',
                            help='change it for this long, then put the old level back')
        parser.add_argument('--timeout', type=float, default=3.0, metavar='SECONDS',
                            help='how long to wait for each instance (default: 3)')
        parser.add_argument('--json', action='store_true', help='print one JSON object per instance')

    def run(self, args: argparse.Namespace) -> int:
        import gevent

        from fannode.cli import cluster, output, targets
        from fannode.core.loglevel import check_level, check_logger, check_period
        from fannode.exceptions import BadArguments, FannodeError, UsageError
        from fannode.zmqrpc.direct import call_instance

        try:
            level = check_level(args.level)
            period = check_period(args.period)
            check_logger(args.logger)
        except BadArguments as e:
            raise UsageError(str(e)) from None
        if args.timeout <= 0:
            raise UsageError('--timeout must be positive')
        instances = targets.instances_of(cluster.registry(args), args.service)
        kwargs = {'level': level, 'logger': args.logger, 'period': period}

        def change(info):
            try:
                return call_instance(info.endpoint, '%s.change_loglevel' % args.service, kwargs, args.timeout)
            except FannodeError as e:
                return e

        jobs = [gevent.spawn(change, info) for info in instances]
        gevent.joinall(jobs)
        failed = 0
        for info, job in zip(instances, jobs):
            reply, who = job.value, '%s  pid %s' % (targets.short(info), info.pid)
            if isinstance(reply, FannodeError):
                failed += 1
                if args.json:
                    output.print_json({'instance': info.id, 'pid': info.pid, 'error': str(reply)})
                else:
                    output.err.print('%s  error: %s' % (who, reply), markup=False)
            elif args.json:
                output.print_json(dict(reply, instance=info.id))
            else:
                back = '  (back in %gs)' % reply['period'] if reply.get('period') else ''
                output.out.print('%s  %s: %s → %s%s' % (who, reply['logger'], reply['old'], reply['new'], back),
                                 markup=False)
        return 1 if failed else 0
