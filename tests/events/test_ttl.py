"""Event ttl as a service author meets it: `emit(..., ttl=SECONDS)` on an Interface, on
fannode.emit and in fannode.testing; bad values refused at emit; old events still read.
What every backend does with an expired delivery is in tests/contracts/test_events_ttl_contract.py."""
from __future__ import annotations

import gevent
import pytest

import fannode
from fannode.core.events import Event
from fannode.events.encoding import Unreadable, decode
from fannode.exceptions import UsageError
from fannode.testing import TestCluster, wait_until


class Orders(fannode.Interface):
    @fannode.rpc()
    def place(self, n, ttl=None, delay=None):
        self.emit('order.placed', {'n': n}, delay=delay, ttl=ttl)

    @fannode.event('order.placed', sequential=True)
    def ship(self, event):
        gevent.sleep(event['n'] and 0.3)  # order 0 is quick, the others busy
        self.shipped.append((event['n'], fannode.time_left()))

    def on_start(self):
        self.shipped = []


@pytest.fixture
def orders():
    with TestCluster(Orders) as cluster:
        yield cluster


def test_an_event_held_past_its_ttl_is_dead_lettered_not_handled(orders):
    orders.proxy('Orders').place(n=0, ttl=0.1, delay=0.3)
    [dead] = wait_until(lambda: orders.dead_letters, 5, 'the dead letter')
    assert dead['queue'] == 'Orders.ship' and dead['reason'].startswith('ttl expired: not handled within 0.1s')
    assert orders.interface('Orders').shipped == []
    orders.assert_logged('after 1 attempt(s): ttl expired: not handled within 0.1s')


def test_events_queued_behind_a_busy_handler_past_their_ttl_are_not_handled(orders):
    shipped = orders.interface('Orders').shipped
    orders.proxy('Orders').place(n=1, ttl=5)
    orders.proxy('Orders').place(n=2, ttl=0.1)  # waits 0.3 s behind the first
    orders.proxy('Orders').place(n=0, ttl=5)
    wait_until(lambda: len(shipped) == 2, 5, 'the two in time')
    assert [n for n, _ in shipped] == [1, 0]
    assert all(0 < left <= 5 for _, left in shipped)  # handled under the event's deadline
    assert [d['event']['body'] for d in orders.dead_letters] == [{'n': 2}]


def test_an_event_without_ttl_is_handled_however_late(orders):
    orders.proxy('Orders').place(n=0, delay=0.2)
    wait_until(lambda: orders.interface('Orders').shipped, 5, 'the event')
    assert orders.interface('Orders').shipped == [(0, None)]


@pytest.mark.parametrize('ttl', [-1, 0, float('nan'), float('inf'), 'soon', True])
def test_a_bad_ttl_is_refused_at_emit(orders, ttl):
    with pytest.raises(UsageError, match=r'^event order.placed: ttl must be a number of seconds above 0, got '):
        orders.interface('Orders').emit('order.placed', {'n': 0}, ttl=ttl)
    with pytest.raises(UsageError, match=r'^event x: ttl must be a number of seconds above 0, got '):
        fannode.emit('x', ttl=ttl)
    assert orders.emitted == []


def test_events_from_before_ttl_still_read_and_a_bad_one_is_refused():
    old = {'type': 'tick', 'body': {}, 'headers': {'id': 'a1', 'time': 1.0}}
    assert decode(old).ttl is None and decode(old).expires is None
    assert decode(dict(old, headers={'id': 'a1', 'time': 1.0, 'ttl': 2})).expires == 3.0
    assert Event.new('tick', {}, 't', 'me', 1.5).ttl == 1.5
    for bad in (-1, 'x', float('nan'), True):
        with pytest.raises(Unreadable, match='event tick: header ttl is .*, not a number of seconds above 0'):
            decode(dict(old, headers={'ttl': bad}))
