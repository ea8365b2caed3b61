"""Log records on their way to the log hub: made of plain types (core/logsetup.py), and a
record the codec still cannot carry is dropped and counted by the shipper (logs/ship.py),
never stopping it or costing the batch it is in."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, free_port
from fannode.core import serial
from fannode.hub.server import Hub
from fannode.logs.ship import Shipper, gevent_schedule
from fannode.testing import wait_until


@pytest.fixture
def hub():
    port = free_port()
    h = Hub()
    h.bind('127.0.0.1', port)
    h.start()
    h.endpoint = 'tcp://127.0.0.1:%d' % port
    yield h
    h.stop()


def kept(hub):
    """The records the log hub keeps, oldest first (each kept with its sizes)."""
    return [entry[0] for entry in hub.logs.kept]


def messages(hub):
    return [r.get('msg') for r in kept(hub)]


def record(msg, **extra):
    return dict({'kind': 'log', 'ts': 1.0, 'level': 'INFO', 'logger': 't', 'msg': msg, 'service': 'Demo',
                 'trace': '', 'span': ''}, **extra)


def test_a_record_that_cannot_be_encoded_is_dropped_and_counted_and_the_rest_arrive(hub, caplog):
    shipper = Shipper(hub.endpoint, gevent_schedule)
    try:
        shipper.add(record('before'))
        shipper.add(record('an object', extra=object()))
        shipper.add(record('a lone surrogate \udce9'))
        shipper.add(record('after'))
        wait_until(lambda: 'after' in messages(hub), 5, 'the records around the bad ones')
        shipper.add(record('later'))  # the shipper is alive
        wait_until(lambda: 'later' in messages(hub), 5, 'a record added afterwards')
    finally:
        shipper.close()
    assert [m for m in messages(hub) if not m.startswith('2 log record(s) dropped')] == ['before', 'after', 'later']
    assert shipper.unsendable == 2
    assert [r.getMessage() for r in caplog.records if r.name == 'fannode.logs.ship'] == [
        "a log record could not be encoded (TypeError: cannot serialize object of type 'object'); dropped it, "
        "and any more such are counted in the records dropped"]


def test_a_batch_too_big_for_one_message_goes_in_several(hub):
    shipper = Shipper(hub.endpoint, gevent_schedule)
    big = 'x' * (200 * 1024)
    try:
        for n in range(120):  # 24 MB: over the 16 MiB a message may have
            shipper.add(record('%d %s' % (n, big)))
        wait_until(lambda: len(messages(hub)) == 120, 10, 'every record')
    finally:
        shipper.close()
    assert shipper.unsendable == 0 and [m.split()[0] for m in messages(hub)] == [str(n) for n in range(120)]


SCRIPT = textwrap.dedent('''
    import logging, os, sys
    import gevent
    from fannode.core import logsetup, trace
    from fannode.logs.ship import Shipper, gevent_schedule
    shipper = Shipper(sys.argv[1], gevent_schedule)
    logsetup.setup('INFO', 'Demo', ship=shipper.add)
    log = logging.getLogger('demo')

    class Odd:
        def __str__(self):
            return 'odd \\udce9'

    def work():
        log.info('a file named %s', os.fsdecode(b'caf\\xe9'))  # a lone surrogate, as from a file name
        log.info('%s', Odd())
        trace.begin().end('job', 'demo.job', thing=Odd(), count=3, ratio=float('nan'))
        log.info('after')
        gevent.sleep(0.2)
        shipper.close()

    gevent.spawn(work).join()
''')


def test_what_a_process_logs_reaches_the_hub_whatever_its_values(hub, tmp_path):
    done = subprocess.run([sys.executable, '-c', SCRIPT, hub.endpoint], capture_output=True, text=True,
                          timeout=30, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    wait_until(lambda: 'after' in messages(hub), 10, 'the line logged after the odd ones')
    records = kept(hub)
    logs = [r['msg'] for r in records if r['kind'] == 'log']
    assert logs == ['a file named caf\\udce9', 'odd \\udce9', 'after']
    span, = [r for r in records if r['kind'] == 'span']
    assert (span['thing'], span['count'], span['ratio']) == ('odd \\udce9', 3, 'nan')
    for r in records:
        serial.dumps(r)
