"""An emit that cannot be sent raises in the emitter, wherever it is made (an instance's
handler, `fannode.emit`, `fannode emit`), and never costs the events emitted after it; a
sender the hub refuses an event keeps sending the rest. What every backend does with
such events is in tests/contracts/test_events_poison_contract.py."""
from __future__ import annotations

import functools
import logging
import subprocess
import sys
import time

import pytest

import fannode
from conftest import ROOT, free_port
from fannode.core.config import loads_config
from fannode.exceptions import BadArguments, UsageError
from fannode.hub.server import Hub
from fannode.runtime.container import ServiceContainer
from fannode.testing import wait_until

SEEN: list[object] = []


class Ticks(fannode.Interface):
    @fannode.event('tick')
    def on_tick(self, event):
        SEEN.append(event['n'])


CONFIG = 'interfaces:\n  Ticks:\n    class: test_emit_errors:Ticks\n'
BAD = r"event tick: body\['o'\] cannot be sent: cannot serialize object of type 'object'"


@pytest.fixture
def hub(tmp_path):
    SEEN.clear()
    port = free_port()
    h = Hub(journal=str(tmp_path / 'journal.db'))
    h.bind('127.0.0.1', port)
    h.start()
    h.url = 'hub://127.0.0.1:%d' % port
    yield h
    h.stop()


@pytest.fixture
def instance(hub):
    c = ServiceContainer(loads_config(CONFIG), hub.url, events=hub.url)
    c.start()
    yield c
    c.stop(timeout=1)


def test_an_unencodable_emit_raises_and_the_instance_goes_on_sending(instance, caplog):
    with pytest.raises(TypeError, match=BAD) as caught:
        instance.emit('tick', {'o': object()})
    assert isinstance(caught.value, UsageError)
    for n in range(3):
        instance.emit('tick', {'n': n})
    wait_until(lambda: len(SEEN) == 3, 10, 'the events emitted after it')
    started = time.monotonic()
    instance.stop(timeout=5)
    assert time.monotonic() - started < 2  # nothing was left that it could not send
    assert not [r for r in caplog.records if 'not sent' in r.getMessage()]
    assert sorted(SEEN) == [0, 1, 2]


def test_fannode_emit_raises_for_an_unencodable_body(hub, instance, monkeypatch):
    from fannode.events import default
    monkeypatch.setenv('FANNODE_EVENTS', hub.url)
    default.set_events(None)
    try:
        with pytest.raises(TypeError, match=BAD):
            fannode.emit('tick', {'o': object()})
        with pytest.raises(UsageError, match='delay must be a number of seconds'):
            fannode.emit('tick', {'n': 1}, delay=float('nan'))
        fannode.emit('tick', {'n': 2})
        wait_until(lambda: SEEN == [2], 10, 'the good event')
    finally:
        default.get_events().close(1)
        default.set_events(None)


def test_an_event_the_hub_refuses_is_dropped_and_counted_and_the_rest_go(hub, instance, caplog):
    """Whatever the hub refuses (its own bounds may be tighter than the emitter's), that
    one event is dropped, logged and counted; it never holds up the batch it came in."""
    original = hub.rpc_publish

    @functools.wraps(original)
    def publish(peer, events):
        if any(e['event']['body'].get('refuse') for e in events):
            raise BadArguments('hub.publish: refused for this test')
        return original(peer, events)

    hub.rpc_publish = publish
    for n in range(5):
        instance.emit('tick', {'n': n})
    instance.emit('tick', {'n': 'refused', 'refuse': True})
    for n in range(5, 10):
        instance.emit('tick', {'n': n})
    assert instance.events.flush(5)
    wait_until(lambda: len(SEEN) == 10, 10, 'the ten others')
    assert sorted(SEEN) == list(range(10)) and instance.events.dropped == 1
    refused = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and 'refused event' in r.getMessage()]
    assert len(refused) == 1 and 'hub.publish: refused for this test' in refused[0], refused


@pytest.mark.parametrize('args, message', [
    (['--delay', 'nan'], 'error: event tick: delay must be a number of seconds from 0 to 4294967'),
    (['--delay', '1e30'], 'error: event tick: delay must be a number of seconds from 0 to 4294967'),
    (['--trace-id', 'not an id'], 'error: event tick: header trace_id is'),
])
def test_fannode_emit_refuses_what_no_broker_could_carry_in_one_line(tmp_path, args, message):
    done = subprocess.run([sys.executable, '-m', 'fannode.cli', 'emit', 'tick', '{}', *args,
                           '--events', 'local://cli'], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={'PYTHONPATH': str(ROOT), 'PATH': '/usr/bin:/bin'})
    assert done.returncode != 0 and done.stderr.strip().startswith(message), done.stderr
    assert 'Traceback' not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
