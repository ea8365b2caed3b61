"""bench.discover: `fannode discover` against a hub with 1,000 instances registered.

The `discover` case of `python -m bench`: a hub, and one process registering the
instances through the hub client (bench/standin.py without --serve: registrations and
heartbeats only, no process behind the endpoints; discover never calls them), spread over
10 services with two versions each. Then the wall time of the CLI process, from its start
to its exit, for `fannode discover`, `--json` and `--instances` (the table of every
instance), beside the same commands against a hub with 10 instances: what the 990 others
cost. Target: under 0.3 s.

    python -m bench.discover                       # 1,000 instances, 5 runs of each
    python -m bench.discover --instances 200 --runs 3
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

from bench.procs import FANNODE, BenchError, Procs, free_port
from bench.report import Row, at_most, compare, skipped

if TYPE_CHECKING:
    from bench.runner import Context

TARGET_S = 0.3
SERVICES = 10
SMALL = 10  # the anchor's instances
FORMS = {'plain': [], 'json': ['--json'], 'instances': ['--instances']}


def registered(procs: Procs, sizes: tuple[int, ...]) -> list[str]:
    """A hub per size with that many instances registered by one stand-in process, all
    started side by side; their URLs."""
    urls = ['hub://127.0.0.1:%d' % free_port() for _ in sizes]
    hubs = [procs.hub(url) for url in urls]
    standins = [procs.start('standin-%d' % n, [sys.executable, '-m', 'bench.standin', '--registry', url,
                                               '--instances', str(n), '--services', str(SERVICES)])
                for url, n in zip(urls, sizes)]  # they register once their hub answers
    for hub, standin, n in zip(hubs, standins, sizes):
        hub.wait_for('hub listening', 20)
        standin.wait_for('ready %d' % n, 30 + n / 50)
    return urls


def timed(procs: Procs, url: str, form: str) -> float:
    """Wall time of one `fannode discover` process, start to exit."""
    argv = [*FANNODE, 'discover', '--registry', url, *FORMS[form]]
    started = time.perf_counter()
    done = subprocess.run(argv, env=procs.env, cwd=procs.dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError('fannode discover %s exited %d: %s' % (' '.join(FORMS[form]), done.returncode,
                                                                 done.stderr.decode(errors='replace')[-500:]))
    return took


def run(procs: Procs, instances: int, runs: int, warm: tuple[str, ...] = tuple(FORMS),
        quiet: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """{form: {'big': [s...], 'small': [s...]}}, runs taken in turn (after one warm-up of
    each form of `warm`); `quiet` is called before the first."""
    big, small = registered(procs, (instances, SMALL))
    quiet()
    for form in warm:  # the warm-up: disk caches, .pyc files
        timed(procs, big, form)
    figures: dict[str, Any] = {form: {'big': [], 'small': []} for form in FORMS}
    for _ in range(runs):
        for form in FORMS:
            figures[form]['small'].append(timed(procs, small, form))
            figures[form]['big'].append(timed(procs, big, form))
    return figures


def case(ctx: Context) -> list[Row]:
    instances, runs = ctx.pick(1000, 200), ctx.pick(5, 2)
    label = {'plain': 'fannode discover', 'json': 'fannode discover --json', 'instances': 'fannode discover -i'}
    what = '%s, %d registered (fakes via the hub client)'
    anchor = 'the same with %d registered' % SMALL
    ctx.step('fannode discover with %d instances registered' % instances)
    try:
        f = run(ctx.procs, instances, runs, ctx.pick(tuple(FORMS), ('plain',)), ctx.quiet)
    except BenchError as e:
        why = str(e).splitlines()[0]
        return [skipped(form, what % (label[form], instances), 's', why, anchor) for form in FORMS]
    ctx.details['discover'] = f
    ctx.say('  ✓ discover with %d registered: %s' % (instances, ', '.join(
        '%s %.2f s' % (form, statistics.median(f[form]['big'])) for form in FORMS)))
    return [compare(form, what % (label[form], instances), 's', f[form]['big'], anchor, f[form]['small'],
                    target=at_most(TARGET_S)) for form in FORMS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m bench.discover', description=__doc__.split('\n\n')[0])
    parser.add_argument('--instances', type=int, default=1000)
    parser.add_argument('--runs', type=int, default=5)
    args = parser.parse_args(argv)
    procs = Procs()
    try:
        f = run(procs, args.instances, args.runs)
    except BenchError as e:
        print('bench.discover: %s' % e, file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        procs.cleanup()
    ok = True
    for form, args_ in FORMS.items():
        big, small = statistics.median(f[form]['big']), statistics.median(f[form]['small'])
        ok = ok and big < TARGET_S
        print('  fannode discover %-12s %5.3f s with %d registered, %5.3f s with %d' % (
            ' '.join(args_), big, args.instances, small, SMALL))
    print('  target: < %g s  %s' % (TARGET_S, 'ok' if ok else 'MISSED'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
