"""`python -m bench.nameko [--quick] [--duration SECONDS] [--rounds N] [--concurrency N]
[--json]`: RPC calls per second for nameko (ClusterRpcProxy over RabbitMQ), zerorpc and
fannode with ZooKeeper discovery, side by side, sequential and with 50 calls in flight,
against the same trivial greet(name) service. RabbitMQ and ZooKeeper are started here
with scripts/provision on free ports. nameko and zerorpc run from their own venv,
bench/.anchors-venv, made on first use (about 40 s) and reused after.

Exits 0 whether targets are met or missed (it reports, it does not gate); 1 with a
one-line error when something fails to start or a call fails; 130 on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

from bench import anchors, report
from bench.anchors import Servers
from bench.procs import BENCH, FANNODE, BenchError, Proc, Procs, free_port
from bench.report import commas, note_noisy, print_json, round_ratios, spread, table_console, verdict
from bench.runner import parse_rate_args, run_bench, spinner

# Targets: fannode sequential as a multiple of each anchor's sequential rate.
TARGET_VS_NAMEKO = 5.0
TARGET_VS_ZERORPC = 3.0
START_TIMEOUT = 15.0
RAMP = 0.1        # seconds for the in-flight calls to fill the pipe before counting
REPLY = 'Hi, Joe!'

ROWS = (  # key, label; the order of the rows and of each round
    ('nameko_sequential', 'nameko, sequential'),
    ('nameko_in_flight', 'nameko, %d in flight (call_async)'),
    ('zerorpc_sequential', 'zerorpc, sequential'),
    ('zerorpc_in_flight', 'zerorpc, %d in flight'),
    ('fannode_sequential', 'fannode, sequential'),
    ('fannode_in_flight', 'fannode, %d in flight'),
)


class AnchorClient(Proc):
    """An anchor's client in the anchors venv (bench/services/anchor_client.py): commands on
    stdin, one JSON line back on stdout for each; stderr goes to its log."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path):
        self.name = name
        self.log_path = cwd / ('%s.log' % name)
        self.log = open(self.log_path, 'w+b')
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self.log, start_new_session=True, text=True)
        self.pid = self.popen.pid

    def ask(self, command: str | None, timeout: float) -> dict[str, Any]:
        """Send `command` (None: just read, for the "ready" line) and wait for the answer."""
        if command is not None:
            self.popen.stdin.write(command + '\n')
            self.popen.stdin.flush()
        if not select.select([self.popen.stdout], [], [], timeout)[0]:
            raise BenchError('%s did not answer %s within %gs (last output: %s)'
                             % (self.name, repr(command) if command else 'ready', timeout, self.last_line()))
        line = self.popen.stdout.readline()
        if not line:
            raise BenchError('%s exited with %s: %s' % (self.name, self.popen.wait(5), self.last_line()))
        answer = json.loads(line)
        if 'error' in answer:
            raise BenchError('%s: %s' % (self.name, answer['error']))
        return answer

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.popen.stdin.close()  # end of input: it closes its connection and exits
            self.popen.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        super().stop(timeout)


def measure(args: argparse.Namespace, procs: Procs, servers: Servers, say: Callable[[str], None],
            status: Callable[[str], None]) -> dict[str, Any]:
    status('anchors venv')
    python = str(anchors.ensure_venv(say))

    status('starting RabbitMQ and ZooKeeper (scripts/provision, about 6 s)')
    ports = {'rabbitmq': free_port(), 'zookeeper': free_port()}
    servers.start(ports)
    amqp = 'amqp://guest:guest@127.0.0.1:%d/' % ports['rabbitmq']
    zk = 'zookeeper://127.0.0.1:%d/fannode-bench' % ports['zookeeper']
    say('  ✓ RabbitMQ on 127.0.0.1:%d, ZooKeeper on 127.0.0.1:%d' % (ports['rabbitmq'], ports['zookeeper']))

    # Imported here: gevent and zmq.green only once we know we will run.
    import gevent

    from fannode.discovery import get_registry
    from fannode.zmqrpc.client import RpcClient

    from bench import rpc
    rpc.quiet_interrupts()

    status('starting the services')
    services = BENCH / 'services'
    zerorpc_port = free_port()
    nameko = procs.start('nameko-service', [str(Path(python).parent / 'nameko'), 'run', '--broker', amqp,
                                            'nameko_greeting:Greeting'])
    zerorpc = procs.start('zerorpc-server', [python, str(services / 'zerorpc_greeting.py'), str(zerorpc_port)])
    # Events stay in the process (local://): the RPC path and ZooKeeper are what is measured.
    instance = procs.start('instance', [*FANNODE, 'instance', '--registry', zk, '--events', 'local://bench',
                                        '--config', str(BENCH / 'conf' / 'greeting.yml')], {'FANNODE_REGISTRY': zk})
    nameko.wait_for('Connected to amqp', START_TIMEOUT)
    zerorpc.wait_for('ready', START_TIMEOUT)
    instance.wait_for('serving', START_TIMEOUT)

    clients = {}
    for kind, address in (('nameko', amqp), ('zerorpc', 'tcp://127.0.0.1:%d' % zerorpc_port)):
        clients[kind] = client = AnchorClient('%s-client' % kind, [python, str(services / 'anchor_client.py'), kind,
                                                                   address], procs.env, procs.dir)
        procs.procs.append(client)  # stopped by PID with the rest
    for kind, client in clients.items():
        client.ask(None, START_TIMEOUT)
        reply = client.ask('check', START_TIMEOUT)['reply']
        if reply != REPLY:
            raise BenchError('%s answered %r, expected %r' % (kind, reply, REPLY))
    fannode = RpcClient(get_registry(zk))
    deadline = time.monotonic() + START_TIMEOUT
    while not fannode.registry.lookup('Greeting'):  # gevent.sleep: kazoo's watches run meanwhile
        if time.monotonic() > deadline:
            raise BenchError('timed out after %gs waiting for ZooKeeper to list the instance' % START_TIMEOUT)
        gevent.sleep(0.02)
    fannode_call = rpc.fannode_call(fannode.proxy('Greeting'))
    rpc.check(fannode_call)
    say('  ✓ nameko pid %d, zerorpc pid %d, fannode instance pid %d (listed in ZooKeeper)'
        % (nameko.pid, zerorpc.pid, instance.pid))

    def rate(key: str, seconds: float) -> rpc.Rate:
        kind, mode = key.split('_', 1)
        if kind == 'fannode':
            if mode == 'sequential':
                return rpc.sequential(fannode_call, seconds)
            return rpc.in_flight(fannode_call, args.concurrency, seconds, RAMP)
        command = 'sequential %g' % seconds if mode == 'sequential' else \
            'in_flight %d %g %g' % (args.concurrency, seconds, RAMP)
        answer = clients[kind].ask(command, seconds + RAMP + 60)
        return rpc.Rate(answer['calls'], answer['seconds'])

    status('warming up')
    for key, _ in ROWS:
        rate(key, args.warmup)
    watch = rpc.CpuWatch([os.getpid(), nameko.pid, zerorpc.pid, instance.pid,
                          *(c.pid for c in clients.values()), *servers.pids()])
    rates: dict[str, list[Any]] = {key: [] for key, _ in ROWS}
    part = args.duration / args.rounds
    for i in range(args.rounds):
        for key, _ in ROWS:
            status('round %d/%d: %s' % (i + 1, args.rounds, key.replace('_', ', ', 1).replace('_', ' ')))
            rates[key].append(rate(key, part))
        say('  ✓ round %d/%d: %s' % (i + 1, args.rounds, ', '.join(
            '%s %s/s' % (key, commas(r[-1].per_second)) for key, r in rates.items())))
    background = watch.background()
    fannode.close()

    figures = summarize(rates)
    figures['background_cpu'] = round(background, 2)
    return figures


def summarize(rates: dict[str, list[Any]]) -> dict[str, Any]:
    """Totals over the rounds; ratios to each anchor's sequential rate over the totals, and
    per round for the spread."""
    figures: dict[str, Any] = {}
    for key, rs in rates.items():
        calls, seconds = sum(r.calls for r in rs), sum(r.seconds for r in rs)
        figures[key] = {'calls': calls, 'seconds': round(seconds, 3), 'calls_per_s': round(calls / seconds, 1)}
    for anchor in ('nameko', 'zerorpc'):
        base = rates['%s_sequential' % anchor]
        for key, rs in rates.items():
            f = figures[key]
            f['vs_%s' % anchor] = round(f['calls_per_s'] / figures['%s_sequential' % anchor]['calls_per_s'], 3)
            f['round_vs_%s' % anchor] = round_ratios(rs, base)
    f = figures['fannode_sequential']
    f['targets'] = {'vs_nameko': {'min': TARGET_VS_NAMEKO, 'pass': f['vs_nameko'] >= TARGET_VS_NAMEKO},
                    'vs_zerorpc': {'min': TARGET_VS_ZERORPC, 'pass': f['vs_zerorpc'] >= TARGET_VS_ZERORPC}}
    return figures


def machine(servers: Servers) -> dict[str, Any]:
    pins = dict(p.split('==') for p in anchors.PINS)
    return report.machine(nameko=pins['nameko'], eventlet=pins['eventlet'], kombu=pins['kombu'],
                          zerorpc=pins['zerorpc'], pyzmq=metadata.version('pyzmq'), kazoo=metadata.version('kazoo'),
                          rabbitmq=servers.versions.get('rabbitmq-server', '?'),
                          zookeeper=servers.versions.get('zookeeper', '?'))


def table(args: argparse.Namespace, figures: dict[str, Any], info: dict[str, Any]) -> Table:
    t = Table(title='fannode RPC beside nameko and zerorpc: greet(name) on 127.0.0.1', caption=(
        'nameko %s (eventlet %s, kombu %s) over RabbitMQ %s, defaults; zerorpc %s, defaults; fannode with '
        'ZooKeeper %s discovery (kazoo %s). Anchors in bench/.anchors-venv, each client in a process of its '
        'own; fannode\'s in the bench process. %d CPUs, Python %s; %gs per rate in %d round(s), after %gs '
        'warm-up; other processes used %.2f CPU meanwhile' % (
            info['nameko'], info['eventlet'], info['kombu'], info['rabbitmq'], info['zerorpc'],
            info['zookeeper'], info['kazoo'], info['cpus'], info['python'], args.duration, args.rounds,
            args.warmup, figures['background_cpu'])))
    for name in ('measurement', 'result', 'vs nameko seq', 'vs zerorpc seq', 'per round (nameko / zerorpc)',
                 'target', ''):
        t.add_column(name, justify='left' if name == 'measurement' else 'right')

    for key, label in ROWS:
        f = figures[key]
        target, mark, rounds = '', '', ''
        if key in ('nameko_sequential', 'zerorpc_sequential'):
            target = 'anchor'
        elif key.startswith('fannode'):
            rounds = ' / '.join(filter(None, (spread(f['round_vs_nameko']), spread(f['round_vs_zerorpc']))))
        if key == 'fannode_sequential':
            ok = f['targets']
            target = '≥ %g× / ≥ %g×' % (TARGET_VS_NAMEKO, TARGET_VS_ZERORPC)
            mark = '%s / %s' % (verdict(ok['vs_nameko']['pass']), verdict(ok['vs_zerorpc']['pass']))
        t.add_row(label.replace('%d', str(args.concurrency)), '%s calls/s' % commas(f['calls_per_s']),
                  '%.2f×' % f['vs_nameko'], '%.2f×' % f['vs_zerorpc'], rounds, target, mark)
    return t


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m bench.nameko', description='RPC calls/s: nameko and zerorpc (the anchors, in '
        'bench/.anchors-venv) beside fannode with ZooKeeper discovery. Exits 0 on a MISS; 1 if something fails.')
    return parse_rate_args(parser, argv, 'calls kept in flight in the concurrent measurements (default: 50)')


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs = Procs()
    servers = Servers(procs)

    def render(figures: dict[str, Any], err: Console) -> None:
        note_noisy(err, figures['background_cpu'], 'the ratios are')
        info = machine(servers)
        if args.json:
            print_json({'machine': info, 'duration': args.duration, 'rounds': args.rounds, 'warmup': args.warmup,
                        'concurrency': args.concurrency, 'figures': figures})
        else:
            table_console(160).print(table(args, figures, info))

    # The servers stop after our processes, which use them.
    return run_bench(procs, lambda say, status: measure(args, procs, servers, say, status), render,
                     spinner('nameko benchmark'), servers.stop_all)


if __name__ == '__main__':
    sys.exit(main())
