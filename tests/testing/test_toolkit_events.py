"""Events in a TestCluster are what they are on a hub (docs/testing.md): bodies through the
codec, emits that cannot be sent refused and not recorded as emitted, each delivery's
event its own, failures retried and dead-lettered with their reason."""
import time

import pytest

import fannode
import fannode.testing
from fannode.exceptions import UsageError


class Orders(fannode.Interface):
    @fannode.rpc()
    def place(self, what):
        items = [what]
        self.emit('order.placed', {'items': items, 'pair': (1, 2), 'when': {'day': (2024, 5, 1)}})
        items.append('added after the emit')
        return len(items)

    @fannode.rpc()
    def place_badly(self):
        self.emit('order.placed', {'o': object()})

    @fannode.rpc()
    def place_later(self, delay):
        self.emit('order.placed', {'items': []}, delay=delay)


class Shipping(fannode.Interface):
    got = []

    @fannode.event('order.placed')
    def on_placed(self, event):
        Shipping.got.append(dict(event))


class Flaky(fannode.Interface):
    @fannode.event('order.placed', retry=2)
    def on_placed(self, event):
        event.body['seen_by'] = event.attempt  # its own copy: the next attempt does not see it
        raise ValueError('not today')


@pytest.fixture(autouse=True)
def clear():
    Shipping.got.clear()


def test_a_handler_gets_the_body_as_the_codec_carries_it(fannode_cluster):
    cluster = fannode_cluster(Orders, Shipping)
    assert cluster.proxy('Orders').place(what='tea') == 2
    cluster.wait_handled('order.placed')
    body, = Shipping.got
    assert body == {'items': ['tea'], 'pair': [1, 2], 'when': {'day': [2024, 5, 1]}}
    assert type(body['pair']) is list  # a tuple arrives as a list, as from a hub
    emitted = cluster.assert_emitted('order.placed', {'pair': (1, 2)})  # compared as sent
    assert emitted['items'] == ['tea']  # what went out, not the list changed after the emit


def test_an_emit_that_cannot_be_sent_raises_in_the_service_and_is_not_recorded(fannode_cluster):
    cluster = fannode_cluster(Orders, Shipping)
    with pytest.raises(fannode.RemoteError) as caught:
        cluster.proxy('Orders').place_badly()
    assert caught.value.remote_type.endswith('Unsendable')
    assert "event order.placed: body['o'] cannot be sent: cannot serialize object of type 'object'" in str(caught.value)
    cluster.assert_not_emitted('order.placed')
    with pytest.raises(TypeError, match="body\\['o'\\] cannot be sent"):
        cluster.emit('order.placed', {'o': object()})
    cluster.assert_not_emitted('order.placed')


def test_a_bad_delay_is_refused_and_a_good_one_is_kept(fannode_cluster):
    cluster = fannode_cluster(Orders, Shipping)
    with pytest.raises(fannode.RemoteError, match='delay must be a number of seconds'):
        cluster.proxy('Orders').place_later(delay=-1)
    with pytest.raises(UsageError, match='delay must be a number of seconds'):
        cluster.emit('order.placed', {}, delay=float('nan'))
    sent = time.monotonic()
    cluster.emit('order.placed', {'items': ['later']}, delay=0.1)
    cluster.wait_handled('order.placed')
    assert time.monotonic() - sent >= 0.1 and Shipping.got == [{'items': ['later']}]


def test_each_attempt_keeps_its_own_event_and_the_last_is_dead_lettered(fannode_cluster):
    cluster = fannode_cluster(Flaky)
    sent = cluster.emit('order.placed', {'n': 1})
    handled = cluster.wait_handled('order.placed', count=3, timeout=5)
    dead = fannode.testing.wait_until(lambda: cluster.dead_letters, 5, 'the dead letter')
    # Read once every attempt is over: a later delivery changes no event kept before it.
    assert [h.event.attempt for h in handled] == [1, 2, 3]
    assert [h.event.body for h in handled] == [{'n': 1, 'seen_by': a} for a in (1, 2, 3)]
    assert [type(h.error).__name__ for h in handled] == ['ValueError'] * 3
    assert [(d['queue'], d['event']['headers']['id'], d['attempts'], d['reason']) for d in dead] == [
        ('Flaky.on_placed', sent.id, 3, 'ValueError: not today')]
