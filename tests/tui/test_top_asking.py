"""The round of get_metrics calls `fannode top` and the dashboard make each interval
(fannode.tui.asking): every instance's answer, or why there is none, in one round."""
from __future__ import annotations

import threading
import time

import pytest
import zmq

from fannode.core import wire
from fannode.exceptions import Timeout
from fannode.tui.asking import InstanceAsks


class Server:
    """A ROUTER in a thread of its own: answers each request with `body`, or never (silent)."""

    def __init__(self, body=None, silent=False):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        port = self.socket.bind_to_random_port('tcp://127.0.0.1')
        self.endpoint = 'tcp://127.0.0.1:%d' % port
        self.body, self.silent, self.asked = body, silent, []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping.is_set():
            if not self.socket.poll(50):
                continue
            peer, frame = self.socket.recv_multipart()
            request = wire.decode(frame)
            self.asked.append(request.subject)
            if not self.silent:
                self.socket.send_multipart([peer, request.reply(wire.REP, self.body).encode()])

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.socket.close(linger=0)
        self.context.term()


def connected(asks, *endpoints, timeout=10.0):
    """Open the connections to `endpoints` and wait (in the gevent loop) until each is up."""
    import gevent
    deadline = time.monotonic() + timeout
    while not all(asks.connection(e).connected for e in endpoints):
        assert time.monotonic() < deadline, 'no connection within %gs' % timeout
        gevent.sleep(0.02)


@pytest.fixture
def servers():
    made = []

    def make(**kwargs):
        made.append(Server(**kwargs))
        return made[-1]
    yield make
    for server in made:
        server.stop()


def test_one_round_gets_every_answer_or_why_there_is_none(servers):
    a, b = servers(body={'process': {'pid': 1}}), servers(body={'process': {'pid': 2}})
    silent = servers(silent=True)
    asks = InstanceAsks()
    try:
        targets = {'a': (a.endpoint, 'Greeting.get_metrics'), 'b': (b.endpoint, 'Other.get_metrics'),
                   'silent': (silent.endpoint, 'Greeting.get_metrics'), 'bad': ('nonsense', 'Greeting.get_metrics')}
        connected(asks, a.endpoint, b.endpoint, silent.endpoint)
        answers = asks.ask_all(targets, 2.0)
        assert answers['a'] == {'process': {'pid': 1}} and answers['b'] == {'process': {'pid': 2}}
        assert isinstance(answers['silent'], Timeout)  # shown 'unresponsive'
        assert isinstance(answers['bad'], ValueError)  # shown 'error'
        answers = asks.ask_all({'a': targets['a'], 'b': targets['b']}, 2.0)  # the same connections again
        assert answers == {'a': {'process': {'pid': 1}}, 'b': {'process': {'pid': 2}}}
        assert a.asked == ['Greeting.get_metrics'] * 2 and b.asked == ['Other.get_metrics'] * 2
        asks.keep_only({a.endpoint})  # the others left discovery
        assert set(asks.connections) == {a.endpoint}
    finally:
        asks.close()
    assert asks.connections == {}


def test_an_instance_that_stops_answering_is_a_timeout_in_the_next_round(servers):
    server = servers(body={'ok': True})
    asks = InstanceAsks()
    try:
        connected(asks, server.endpoint)
        assert asks.ask_all({'x': (server.endpoint, 'S.get_metrics')}, 2.0) == {'x': {'ok': True}}
        server.silent = True
        answer = asks.ask_all({'x': (server.endpoint, 'S.get_metrics')}, 0.3)['x']
        assert isinstance(answer, Timeout)
        server.silent = False  # answering again: the round after shows it
        assert asks.ask_all({'x': (server.endpoint, 'S.get_metrics')}, 2.0) == {'x': {'ok': True}}
    finally:
        asks.close()
