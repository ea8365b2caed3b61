"""Deadlines in one process: a request's budget travels with it, its handler and the
calls it makes get only what is left, and a request that waited past its deadline for a
worker is refused (DeadlineExceeded), not run, and counted in get_metrics."""
from __future__ import annotations

import time

import gevent
import pytest

import fannode
from conftest import wait_until
from fannode.core import deadline, trace, wire
from fannode.core.config import loads_config
from fannode.exceptions import DeadlineExceeded, Nack, Timeout, Unavailable
from fannode.runtime.container import ServiceContainer
from fannode.zmqrpc.connection import Call
from fannode.zmqrpc.direct import call_instance
from rpc_helpers import client, hub_url, serve  # noqa: F401 - fixtures


@pytest.fixture
def chain(hub_url):
    """chain('Front', 'Middle', 'Back') -> the containers running them (tests/services/chain.py)."""
    started = []

    def start(*services, pool_size=1000):
        for name in services:
            config = loads_config('interfaces: {%s: {class: "chain:%s"}}\nrpc: {pool_size: %d}\n'
                                  % (name, name, pool_size))
            container = ServiceContainer(config, hub_url)
            container.start()
            started.append(container)
        return started[-len(services):]

    yield start
    for container in started:
        container.stop(timeout=0)


def test_a_handler_reads_the_time_its_caller_gave_it(chain, client):
    chain('Back')
    got = client.proxy('Back', timeout=2).clock()
    assert 0 < got['deadline'] - got['now'] <= 2  # fannode.deadline(): wall-clock time
    assert fannode.time_left() is None and fannode.deadline() is None  # outside any request


def test_a_nested_call_gets_only_what_is_left(chain, client):
    chain('Front', 'Middle')
    got = client.proxy('Front', timeout=0.5).left()  # Front calls Middle with a timeout of 10 s
    assert 0 < got['there'] < got['here'] <= 0.5


def test_a_chain_fails_at_the_first_callers_deadline_not_when_the_slow_end_is_done(chain, client):
    chain('Front', 'Middle', 'Back')
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r'^Front\.start: no reply within 0\.3s from tcp://'):
        client.proxy('Front', timeout=0.3).start(seconds=1)
    assert time.monotonic() - started < 0.8


def test_a_request_that_waited_past_its_deadline_is_not_run_and_is_counted(chain, client):
    back, = chain('Back', pool_size=1)
    busy = client.proxy('Back', timeout=5).work.defer(seconds=0.5)
    wait_until(lambda: back.rpc.server.in_flight() == 1, message='the only worker busy')
    with pytest.raises(DeadlineExceeded):
        client.proxy('Back', timeout=0.1).work(seconds=0)
    assert busy.get() == 0.5

    def counted():
        figures = client.proxy('Back').get_metrics()['rpc']['Back.work']
        return figures if figures['deadline_exceeded'] else None

    figures = wait_until(counted, message='the refusal counted')
    assert (figures['calls'], figures['deadline_exceeded']) == (1, 1)
    assert client.proxy('Back').runs() == 1  # the late one never ran


def test_the_refusal_names_the_budget_and_the_caller_gets_deadline_exceeded(serve):
    server, conn = serve({'x.sleep': lambda peer, seconds: gevent.sleep(seconds) or seconds}, pool_size=1)
    busy, late = Call('x.sleep', 1, 5.0), Call('x.sleep', 2, 5.0)  # waiting 5 s here...
    assert conn.send(wire.Message(wire.REQ, 1, 'x.sleep', 0.3).encode(), busy)
    assert conn.send(wire.Message(wire.REQ, 2, 'x.sleep', 0, deadline_ms=50).encode(), late)  # ...50 ms there
    with pytest.raises(DeadlineExceeded, match=r'^x\.sleep: not run: its deadline \(50 ms\) passed \d+ ms '
                                               r'before a worker was free$') as refused:
        late.get()
    assert not isinstance(refused.value, Nack) and isinstance(refused.value, Timeout)
    assert busy.get() == 0.3


def test_requests_queued_for_a_worker_are_handed_back_when_the_server_drains(serve):
    server, conn = serve({'x.sleep': lambda peer, seconds: gevent.sleep(seconds) or seconds}, pool_size=1)
    busy, queued = Call('x.sleep', 1, 5.0), Call('x.sleep', 2, 5.0)
    assert conn.send(wire.Message(wire.REQ, 1, 'x.sleep', 0.3).encode(), busy)
    assert conn.send(wire.Message(wire.REQ, 2, 'x.sleep', 0).encode(), queued)
    wait_until(lambda: server.queued, message='the second request queued')
    assert server.drain(2.0)
    with pytest.raises(Unavailable, match='instance is stopping'):  # never ran: the caller may retry
        queued.get()
    assert busy.get() == 0.3


def test_queued_requests_run_in_the_order_they_came(serve):
    order = []
    server, conn = serve({'x.note': lambda peer, n: order.append(n) or gevent.sleep(0.01)}, pool_size=1)
    calls = [Call('x.note', n, 5.0) for n in range(1, 21)]
    for c in calls:
        assert conn.send(wire.Message(wire.REQ, c.id, 'x.note', c.id, deadline_ms=5000).encode(), c)
    for c in calls:
        c.get()
    assert order == list(range(1, 21))


def test_the_span_of_a_request_carries_the_budget_it_received(serve, monkeypatch):
    spans = []
    monkeypatch.setattr(trace, 'sink', spans.append)
    server, conn = serve({'x.echo': lambda peer, body: body})
    for n, budget in ((1, 1500), (2, 0)):
        c = Call('x.echo', n, 2.0)
        assert conn.send(wire.Message(wire.REQ, n, 'x.echo', n, deadline_ms=budget).encode(), c)
        assert c.get() == n
    assert [s.get('budget_ms') for s in spans if s['name'] == 'x.echo'] == [1500, None]


def test_a_direct_call_gets_only_what_the_request_being_handled_has_left(chain):
    back, = chain('Back')
    token = deadline.set(time.monotonic() + 0.2)
    try:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match=r'^Back\.work: no reply within 0\.\d+s from tcp://'):
            call_instance(back.info.endpoint, 'Back.work', {'seconds': 1}, timeout=5)
        assert time.monotonic() - started < 0.8
        with pytest.raises(DeadlineExceeded, match=r'^Back\.runs: not sent, the deadline of the request being '
                                                   r'handled passed \d+ ms ago$'):
            call_instance(back.info.endpoint, 'Back.runs', {}, timeout=5)
    finally:
        deadline.reset(token)
    assert call_instance(back.info.endpoint, 'Back.runs', {}, timeout=5) == 1  # the second was never sent
