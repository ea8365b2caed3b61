"""kill -9 under load: an instance while callers call it, the hub while events flow, the
node while its services work. Real processes; every wait has a deadline; every process a
test starts is SIGKILLed by PID at its end, pass or fail (chaostools.Procs).

The callers and the event clients run in this process on gevent, so every wait here
yields (fannode.testing.wait_until sleeps with gevent) and nothing blocks the loop.
"""
from __future__ import annotations

import collections
import os
import signal
import time
import uuid

import gevent
import psutil
import pytest

from chaostools import FANNODE, TESTS, HubProcess, Procs, base_env, free_port, output, wait_until
from fannode.calls.client import RpcClient
from fannode.core.events import Event
from fannode.discovery import get_registry
from fannode.events.hub import BATCH, HubEvents
from fannode.exceptions import ConnectionLost, FannodeError
from fannode.hub.client import HubLink
from fannode.hub.registry import INSTANCE_TTL
from fannode.node.stopnode import alive

pytestmark = pytest.mark.chaos

CALL_TIMEOUT = 2.0
DEMO = str(TESTS / 'conf' / 'demo.yml')


@pytest.fixture
def procs(tmp_path):
    p = Procs(tmp_path)
    yield p
    p.cleanup()


@pytest.fixture
def calling(procs):
    """calling(client, n) -> n Callers, stopped at the end even when the test failed."""
    made: list[Callers] = []

    def start(client: RpcClient, count: int) -> Callers:
        made.append(Callers(client, count))
        return made[-1]
    yield start
    for callers in made:
        callers.running = False
        gevent.killall(callers.greenlets)


def start_instance(procs: Procs, hub: HubProcess):
    proc = procs.spawn([*FANNODE, 'instance', '--config', DEMO], 'instance', base_env(procs.dir, hub.url))
    wait_until(lambda: 'serving' in output(proc) or proc.poll() is not None, 30, message='the instance to serve')
    assert proc.poll() is None, output(proc)
    return proc


class Callers:
    """Greenlets calling `Greeting.whoami` in a loop; each call is recorded as (started,
    ended, the pid that answered or the exception)."""

    def __init__(self, client: RpcClient, count: int):
        self.client = client
        self.calls: list[tuple[float, float, object]] = []
        self.running = True
        self.greenlets = [gevent.spawn(self.loop) for _ in range(count)]

    def loop(self) -> None:
        while self.running:
            started = time.monotonic()
            try:
                outcome: object = self.client.call('Greeting', 'whoami', {}, CALL_TIMEOUT).get()
            except Exception as e:  # recorded, and looked at by each test
                outcome = e
                gevent.sleep(0.01)  # no instance at all (the node is gone): do not spin
            self.calls.append((started, time.monotonic(), outcome))

    def stop(self) -> None:
        """Stop calling; every call in flight must end within its timeout."""
        self.running = False
        hung = len(self.greenlets) - len(gevent.joinall(self.greenlets, timeout=CALL_TIMEOUT + 2))
        gevent.killall(self.greenlets)
        assert not hung, '%d caller(s) hung in a call' % hung
        slow = [(round(e - s, 2), o) for s, e, o in self.calls if e - s > CALL_TIMEOUT + 0.5]
        assert not slow, 'calls that outlived their %gs timeout: %s' % (CALL_TIMEOUT, slow[:5])


def services(link: HubLink) -> dict[int, str]:
    """pid -> instance id of the Greeting instances the hub lists."""
    return {i['pid']: i['id'] for i in link.call('services').get('Greeting', [])}


def test_an_instance_killed_under_load_fails_only_its_calls_in_flight(procs, calling):
    hub = HubProcess(procs).start()
    victim, survivor = start_instance(procs, hub), start_instance(procs, hub)
    link = HubLink(hub.url)
    client = RpcClient(get_registry(hub.url), timeout=CALL_TIMEOUT)
    try:
        wait_until(lambda: len(services(link)) == 2, 10, message='both instances to register')
        callers = calling(client, 8)
        wait_until(lambda: {victim.pid, survivor.pid} <= {o for _, _, o in callers.calls}, 10,
                   message='calls to reach both instances')
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        killed = time.monotonic()
        # The hub drops it when its lease runs out (2 s; its expiry loop runs every 0.2 s).
        wait_until(lambda: victim.pid not in services(link), INSTANCE_TTL + 1.0,
                   message='the killed instance to leave discovery within its lease')
        gevent.sleep(0.5)  # load goes on after it left, too
        callers.stop()
    finally:
        client.close()
        client.registry.close()
        link.close()
    errors = [(round(s - killed, 3), o) for s, _, o in callers.calls if isinstance(o, Exception)]
    # Each caller had at most one call in flight on the killed instance: that call fails
    # at once (its connection reset); a call never waits out its timeout for it.
    assert all(isinstance(e, ConnectionLost) for _, e in errors) and len(errors) <= 8, errors
    after = [o for s, _, o in callers.calls if s > killed + 0.25]  # once its reset has been read
    assert after and set(after) == {survivor.pid}, collections.Counter(map(repr, after))


def test_events_survive_the_hub_killed_while_they_flow(procs):
    """5,000 events emitted and consumed through a journaled `fannode hub` that is killed
    with SIGKILL in the middle, then started again on its journal.

    docs/events.md promises at-least-once handling, not exactly-once: an event is acked
    after its handler returns, and what a consumer held unacked, or a publish whose answer
    the emitter never got, comes again. So the events emitted around the kill must each be
    handled at least once — none lost — with duplicates bounded by what could be in flight
    when the hub died: one consumer's prefetch window (100) and one publish batch (500).
    Events emitted once the cluster is back, with no failure while they are in flight, are
    handled exactly once: a once-per-service queue hands each event to one consumer, and
    only a failure brings one back."""
    total, around = 5000, 4000
    hub = HubProcess(procs).start()
    handled: collections.Counter[int] = collections.Counter()
    consumer, emitter = HubEvents(hub.url), HubEvents(hub.url)
    link = HubLink(hub.url)
    try:
        def handle(event: Event) -> None:
            gevent.sleep(0.002)  # handlers take a moment: the kill finds deliveries unacked
            handled.update([event['n']])
        sub = consumer.subscribe('Chaos.on_tick', ['chaos.tick'], handle)
        killed: list[int] = []  # how many were handled when the hub was killed

        def emit(numbers: range) -> None:
            for n in numbers:
                while not killed and n - len(handled) > 1000:
                    gevent.sleep(0.005)  # ahead of the consumer: wait, so the kill lands mid-stream
                emitter.emit(Event.new('chaos.tick', {'n': n}, uuid.uuid4().hex, 'chaos'))
                if n % 50 == 49:
                    gevent.sleep(0.025)  # about 2,000 a second at most

        flow = gevent.spawn(emit, range(around))
        wait_until(lambda: len(handled) >= 1000, 20, message='events to flow')
        hub.kill9()
        killed.append(len(handled))
        assert not flow.dead, 'emitting ended before the kill: the test proves nothing'
        hub = HubProcess(procs, hub.journal, hub.port).start()  # emitting goes on meanwhile
        flow.join(30)
        assert flow.dead and flow.successful(), flow.exception
        assert emitter.flush(30), 'the emitter could not hand its events to the restarted hub'
        wait_until(lambda: len(handled) >= around, 30, message='every event emitted around the kill')
        wait_until(lambda: link.call('queues')['Chaos.on_tick']['consumers'] == 1, 10,
                   message='the consumer to consume from the new hub')
        emit(range(around, total))
        assert emitter.flush(30)
        wait_until(lambda: len(handled) == total, 30, message='every event')
        consumer.flush(10)  # the last acks
        wait_until(lambda: settled(link.call('queues')['Chaos.on_tick']), 10,
                   message='nothing left in the queue, delivered or not')
    finally:
        emitter.close(1)
        consumer.close(1)
        link.close()
    assert sorted(handled) == list(range(total)), 'lost: %s' % sorted(set(range(total)) - set(handled))[:20]
    twice = {n: c for n, c in handled.items() if c > 1}
    assert not {n for n in twice if n >= around}, 'handled more than once after the recovery: %s' % (
        {n: c for n, c in twice.items() if n >= around})
    assert sum(c - 1 for c in twice.values()) <= sub.prefetch + BATCH, (
        '%d duplicates (killed after %d handled)' % (sum(c - 1 for c in twice.values()), killed[0]))


def settled(queue: dict) -> bool:
    return queue['ready'] == queue['unacked'] == queue['delayed'] == 0


NODE_YML = '''registry: hub://127.0.0.1:{port}
env:
  PYTHONPATH: {services}
instances:
  greeting:
    command: fannode instance --config {demo}
    numprocesses: 2
  tree:
    command: sh -c "sleep 1000 & sleep 1000 & wait"
'''


def test_a_node_killed_under_load_leaves_no_process_behind(procs, calling):
    port = free_port()
    (procs.dir / 'node.yml').write_text(NODE_YML.format(port=port, services=TESTS / 'services', demo=DEMO))
    env = dict(base_env(procs.dir), XDG_RUNTIME_DIR=str(procs.dir))
    node = procs.spawn([*FANNODE, 'up'], 'up', env)
    wait_until(lambda: 'cluster ready' in output(node) or node.poll() is not None, 60, message='the node')
    assert node.poll() is None, output(node)
    top = psutil.Process(node.pid)

    def tree() -> list[psutil.Process]:
        found = top.children(recursive=True)
        sleeps = [p for p in found if p.name() == 'sleep']
        return found if len(sleeps) == 2 else []
    everything = wait_until(tree, 10, message="the tree block's two grandchildren")
    procs.remember(node.pid)  # killed at the end whatever happens
    client = RpcClient(get_registry('hub://127.0.0.1:%d' % port), timeout=CALL_TIMEOUT)
    try:
        callers = calling(client, 4)
        wait_until(lambda: len({o for _, _, o in callers.calls if isinstance(o, int)}) == 2, 10,
                   message='calls to reach both instances')
        os.kill(node.pid, signal.SIGKILL)
        node.wait(10)
        try:  # PR_SET_PDEATHSIG takes the children, the watchdog their groups: at once
            wait_until(lambda: not alive(everything), 5, message='the node\'s processes to go')
        except AssertionError:
            raise AssertionError('left behind by the killed node: %s' % describe(alive(everything))) from None
        callers.stop()  # and no call hung on the instances that went with it
    finally:
        client.close()
        client.registry.close()
    odd = [o for _, _, o in callers.calls if not isinstance(o, (int, FannodeError))]
    assert not odd, 'calls failed with something other than fannode\'s errors: %r' % odd[:5]


def describe(procs: list[psutil.Process]) -> str:
    out = []
    for proc in procs:
        try:
            out.append('%d %s' % (proc.pid, ' '.join(proc.cmdline())[:80]))
        except psutil.Error:
            out.append(str(proc.pid))
    return ', '.join(out) or 'none'
