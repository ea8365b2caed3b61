"""Retries and breakers with real processes: an instance killed (SIGKILL) in the middle of
a call. An idempotent call is answered by the other instance; another call's
ConnectionLost reaches the caller; then the dead instance gets no more calls."""
from __future__ import annotations

import signal

import gevent
import pytest

from conftest import output, wait_until
from fannode.calls.breaker import BreakerConfig, Settings
from fannode.calls.client import RpcClient
from fannode.discovery import get_registry
from fannode.exceptions import ConnectionLost

pytestmark = pytest.mark.e2e


@pytest.fixture
def two(cluster):
    """A hub, two instances of tests/services/resilient.py's Store, and a client of them."""
    cluster.start_hub()
    procs = [cluster.start_instance('resilient.yml') for _ in range(2)]
    client = RpcClient(get_registry(cluster.url), breakers=BreakerConfig(default=Settings(2, 30.0)))
    wait_until(lambda: len(client.registry.lookup('Store')) == 2, message='both instances to register')
    yield client, procs
    client.close()
    client.registry.close()


def kill_the_one_running(procs, method):
    """SIGKILL the instance that started `method`; the other one."""
    started = wait_until(lambda: [p for p in procs if '%s started' % method in output(p)],
                         message='an instance to start %s' % method)
    started[0].send_signal(signal.SIGKILL)
    return next(p for p in procs if p is not started[0])


def test_an_idempotent_call_is_answered_by_another_instance_when_its_instance_is_killed(two):
    client, procs = two
    call = gevent.spawn(client.proxy('Store', timeout=5).get, seconds=1.0)
    other = kill_the_one_running(procs, 'get')
    assert call.get(timeout=5) == other.pid
    # The dead one stays registered until the hub expires it; calls go to the other all the same.
    assert [client.proxy('Store').get() for _ in range(4)] == [other.pid] * 4


def test_a_call_that_is_not_idempotent_loses_its_connection_and_is_not_retried(two):
    client, procs = two
    call = gevent.spawn(client.proxy('Store', timeout=5).put, seconds=1.0)
    other = kill_the_one_running(procs, 'put')
    with pytest.raises(ConnectionLost) as lost:
        call.get(timeout=5)
    assert 'went away before replying' in str(lost.value)
    assert 'put started' not in output(other)
