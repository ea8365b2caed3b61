"""The `localcalls` case: what a call to an interface running in the same process costs
when it goes through its door (fannode/calls/local.py: encoded and decoded by the codec,
run in a greenlet under its deadline and span, no socket) against the same call over
ZeroMQ on loopback to that same instance (`local=False`). One instance of
bench/services/greeting.py in the bench process, on a private in-process registry;
sequential calls of `greet(name='Joe')`, latency per call in µs."""
from __future__ import annotations

import sys
import uuid
from typing import Any, Callable

from bench import loops
from bench.procs import BENCH, BenchError
from bench.report import Row, at_most, compare
from bench.runner import Context

# The door skips the network and the server's reading loop but keeps every semantic of
# the wire (codec both ways, a greenlet, a span, the metrics): it must be clearly cheaper.
TARGET = at_most(0.5, on='ratio')


def latency_us(call: Callable[[], Any], seconds: float) -> float:
    calls, taken = loops.sequential(call, seconds)
    return taken / calls * 1e6


def run(ctx: Context) -> list[Row]:
    from fannode.core.config import Config
    from fannode.runtime.container import ServiceContainer
    sys.path.insert(0, str(BENCH / 'services'))
    try:
        from greeting import Greeting
    finally:
        sys.path.remove(str(BENCH / 'services'))
    ctx.step('starting an instance in this process')
    config = Config({'interfaces': {'Greeting': {'class': Greeting}}}, '<bench localcalls>')
    container = ServiceContainer(config, 'local://bench-local-%s' % uuid.uuid4().hex[:8])
    container.start()
    try:
        near = container.proxy('Greeting').greet
        far = container.proxy('Greeting', local=False).greet
        replies = (near(name='Joe'), far(name='Joe'))
        if replies != ('Hi, Joe!', 'Hi, Joe!'):
            raise BenchError('unexpected replies %r' % (replies,))
        seconds = ctx.pick(1.0, 0.1)

        def measure(call: Callable[..., Any]) -> Callable[[bool], float]:
            return lambda warm: latency_us(lambda: call(name='Joe'), ctx.pick(0.1, 0.05) if warm else seconds)
        samples = ctx.rounds({'local call': measure(near), 'loopback call': measure(far)})
    finally:
        container.stop(timeout=1.0)
    ctx.say('  ✓ local call %.0f µs, loopback call %.0f µs' % (samples['local call'][-1], samples['loopback call'][-1]))
    return [compare('latency', 'call in the same process, through its door', 'µs', samples['local call'],
                    anchor='the same call over loopback (local=False)', base=samples['loopback call'],
                    target=TARGET)]
