"""The `breakers` case: 50 callers (greenlets in this process, the real client, a proxy
with breakers of 5 failures and a 2 s cool-down) calling Greeting while its only instance
is killed with SIGKILL, three rounds. Once the breaker has opened, how long a failed call
takes (it is refused here, without the network); how many calls sent after the first failure
was seen failed slowly before it opened (those in flight when the instance died fail anyway); and, when
the instance is started again at the same address, the time from its "serving" line to a
call it answers: the cool-down left, or the reconnection, whichever is longer.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import gevent

from bench.procs import BENCH, BROKER, FANNODE, SERVER, BenchError, Proc, free_port
from bench.report import Row, at_most, compare
from bench.runner import Context

CALLERS = 50
START_TIMEOUT = 15.0
FAST = ('CircuitOpen', 'UnknownService')  # refused in the client: nothing sent
SETTINGS = {'failures': 5, 'cooldown': 2.0}  # the proxy's own: a short cool-down keeps the case short


class Callers:
    """CALLERS greenlets calling in a loop; each call's start, duration and outcome."""

    def __init__(self, proxy: Any):
        self.proxy = proxy
        self.calls: list[tuple[float, float, str]] = []  # (started, seconds, 'ok' or the error's name)
        self.running = True
        self.workers = [gevent.spawn(self._loop) for _ in range(CALLERS)]

    def _loop(self) -> None:
        from fannode.exceptions import RpcError
        while self.running:
            started = time.perf_counter()
            try:
                self.proxy.greet(name='Joe')
                outcome = 'ok'
            except RpcError as e:
                outcome = type(e).__name__
            self.calls.append((started, time.perf_counter() - started, outcome))
            if outcome != 'ok':
                gevent.sleep(0.001)  # a caller that fails does something else for a moment

    def stop(self) -> None:
        self.running = False
        gevent.joinall(self.workers, timeout=5)
        gevent.killall(self.workers, block=False)


def start(ctx: Context, url: str, port: int) -> Proc:
    """An instance of bench/services/greeting.py at `port`, waited for without blocking the callers."""
    proc = ctx.procs.start('instance', [*FANNODE, 'instance', '--registry', url, '--port', str(port),
                                        '--config', str(BENCH / 'conf' / 'greeting.yml')], {'FANNODE_REGISTRY': url},
                           SERVER)
    wait(lambda: 'serving' in proc.output() or proc.popen.poll() is not None, START_TIMEOUT, 'the instance to serve')
    if proc.popen.poll() is not None:
        raise BenchError('the instance exited with %s: %s' % (proc.popen.returncode, proc.last_line()))
    return proc


def one_round(ctx: Context, url: str, client: Any, instance: Proc, port: int) -> tuple[dict[str, float], Proc]:
    """Kill the instance (serving at `port`) under load, then start it again at the same
    address; the figures, and the instance started again (the next round's)."""
    proxy = client.proxy('Greeting', timeout=2.0, breaker=SETTINGS)
    breakers = client.breakers.for_call('Greeting', proxy._breaker)
    callers = Callers(proxy)
    try:
        gevent.sleep(0.3)
        if not any(o == 'ok' for _, _, o in callers.calls):
            raise BenchError('no call to the instance succeeded: %s' % callers.calls[-1:])
        ctx.step('killing the instance under load')
        killed = time.perf_counter()
        instance.kill()
        opened = wait(lambda: breakers.state() == 'open', 5.0, 'the breaker to open')
        gevent.sleep(0.3)
        refused = sorted(s for t, s, o in callers.calls if t >= opened and o in FAST)
        if not refused:
            raise BenchError('no call was refused after the breaker opened: %s' % callers.calls[-3:])
        slow = [(t, t + s) for t, s, o in callers.calls if t + s >= killed and o != 'ok' and o not in FAST]
        seen = min(end for _, end in slow)  # the first failure this process saw
        ctx.step('starting it again at the same address')
        back = start(ctx, url, port)
        serving = time.perf_counter()
        resumed = wait(lambda: next((t + s for t, s, o in callers.calls if o == 'ok' and t + s >= serving), None),
                       10.0, 'a call to succeed again')
    finally:
        callers.stop()
    return ({'refused_us': refused[len(refused) // 2] * 1e6, 'in_flight': sum(t < seen for t, _ in slow),
             'sent_after': sum(t >= seen for t, _ in slow), 'resume_s': resumed - serving}, back)


def wait(predicate: Any, timeout: float, what: str) -> float:
    """Poll `predicate` (letting the callers run); the time it became true (perf_counter),
    or the float it returned."""
    deadline = time.perf_counter() + timeout
    while True:
        value = predicate()
        if value:
            return value if isinstance(value, float) else time.perf_counter()
        if time.perf_counter() > deadline:
            raise BenchError('timed out after %gs waiting for %s' % (timeout, what))
        gevent.sleep(0.002)


def run(ctx: Context) -> list[Row]:
    from fannode.calls.client import RpcClient
    from fannode.discovery import get_registry
    url = 'hub://127.0.0.1:%d' % free_port()
    ctx.step('starting a hub')
    ctx.procs.hub(url, BROKER).wait_for('hub listening', START_TIMEOUT)
    client = RpcClient(get_registry(url))
    breaker_log = logging.getLogger('fannode.calls.breaker')
    breaker_log.disabled = True  # its WARNING each round would land in the middle of the progress display
    try:
        ctx.step('starting an instance')
        port = free_port()
        instance = start(ctx, url, port)
        rounds = []
        ctx.quiet()
        for _ in range(ctx.pick(ctx.reps(), 1)):  # each round's instance started again is the next one's
            figures, instance = one_round(ctx, url, client, instance, port)
            rounds.append(figures)
        ctx.procs.stop([instance])
    finally:
        breaker_log.disabled = False
        client.close()
        client.registry.close()
    ctx.details['rounds'] = rounds
    what = 'breaker, %d callers, instance killed' % CALLERS
    return [
        compare('fast_fail', what + ': a refused call', 'µs', [r['refused_us'] for r in rounds],
                target=at_most(1000.0), note='CircuitOpen once open, median call'),
        compare('failures', what + ': calls sent after the first failure that failed slowly', 'calls',
                [r['sent_after'] for r in rounds], target=at_most(float(SETTINGS['failures'])),
                note='besides up to %d sent before (in flight)' % max(r['in_flight'] for r in rounds)),
        compare('resume', 'breaker: instance back at the same address → a call answered', 's',
                [r['resume_s'] for r in rounds], target=at_most(SETTINGS['cooldown'])),
    ]
