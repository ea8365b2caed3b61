"""Deadlines and event ttl across real processes: a chain Front -> Middle -> Back
(tests/services/chain.py) whose slow end is given up on at the first caller's deadline,
work refused unrun once its deadline passed, and `fannode request --timeout`,
`fannode emit --ttl` as a user runs them."""
from __future__ import annotations

import re
import time

import pytest

from conftest import one_line_error, output, wait_until
from fannode.calls.client import RpcClient
from fannode.discovery import get_registry
from fannode.exceptions import DeadlineExceeded

pytestmark = pytest.mark.e2e


@pytest.fixture
def chain(cluster):
    cluster.start_hub()
    cluster.front, cluster.middle, cluster.back = (
        cluster.start_instance('chain-%s.yml' % name) for name in ('front', 'middle', 'back'))
    registry = get_registry(cluster.url)
    cluster.client = RpcClient(registry)
    yield cluster
    cluster.client.close()
    registry.close()


def left_ms(proc, where: str) -> list[int]:
    """The budgets `where` ('Back.work') logged having received, in ms."""
    return [int(ms) for ms in re.findall(r'%s: (-?\d+) ms left' % re.escape(where), output(proc))]


def test_a_chain_gives_up_at_the_first_callers_deadline_and_each_hop_gets_what_is_left(chain):
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r'^Front\.start: no reply within 0\.3s from tcp://'):
        chain.client.proxy('Front', timeout=0.3).start(seconds=1)
    assert time.monotonic() - started < 0.8  # not the 1 s Back sleeps
    wait_until(lambda: left_ms(chain.back, 'Back.work'), message='Back to log its budget')
    [front], [middle], [back] = (left_ms(p, w) for p, w in (
        (chain.front, 'Front.start'), (chain.middle, 'Middle.pass_on'), (chain.back, 'Back.work')))
    assert 300 >= front >= middle >= back > 0, (front, middle, back)  # each hop: its own 10 s clamped


def test_work_whose_deadline_passed_while_it_waited_is_not_run(chain):
    back = chain.client.proxy('Back', timeout=5)
    busy = back.work.defer(seconds=1)  # Back serves one request at a time (pool_size: 1)
    wait_until(lambda: left_ms(chain.back, 'Back.work'), message='the first request running')
    with pytest.raises(DeadlineExceeded):
        chain.client.proxy('Back', timeout=0.2).work(seconds=0)
    assert busy.get() == 1

    def refused():
        return back.get_metrics()['rpc']['Back.work']['deadline_exceeded']

    assert wait_until(refused, message='the refusal counted') == 1
    assert back.runs() == 1
    assert len(left_ms(chain.back, 'Back.work')) == 1  # the late one never started


def test_request_timeout_is_the_deadline_and_its_expiry_is_one_line(chain):
    result = chain.run('request', 'Front.start', '{"seconds": 1}', '--timeout', '0.3')
    assert one_line_error(result, 4).startswith('error: Front.start: no reply within 0.3s from tcp://')
    wait_until(lambda: left_ms(chain.back, 'Back.work'), message='Back to log its budget')
    assert 0 < left_ms(chain.back, 'Back.work')[0] < 300
    assert one_line_error(chain.run('request', 'Back.runs', '--timeout', 'nan'), 2) \
        == 'error: --timeout must be a number of seconds above 0, got nan'


def test_an_event_emitted_with_a_ttl_is_dead_lettered_when_it_cannot_be_handled_in_time(cluster):
    cluster.start_hub()
    listen = cluster.start_instance('listen.yml')
    late = cluster.run('emit', 'count.late', '{"n": 1}', '--ttl', '0.1', '--delay', '0.5')
    assert late.returncode == 0, late.stderr
    event_id = late.stderr.split()[2]
    wait_until(lambda: 'dead-lettered event %s' % event_id in output(cluster.hub), message='the dead letter')
    line = [x for x in output(cluster.hub).splitlines() if event_id in x][-1]
    assert 'ttl expired: not handled within 0.1s of being emitted' in line
    assert cluster.run('emit', 'count.soon', '{"n": 2}', '--ttl', '30').returncode == 0
    wait_until(lambda: 'count count.soon 2' in output(listen), message='the event in time handled')
    assert 'count count.late' not in output(listen)
    assert one_line_error(cluster.run('emit', 'count.x', '--ttl', '-1'), 2) \
        == 'error: --ttl must be a number of seconds above 0, got -1.0'
