"""The log hub's intake: records sized in one pass as the full walk sizes them, refused and
counted as before (a bad record never costs the rest of its batch or the next one), and
written to the ring on disk as the codec writes them."""
from __future__ import annotations

import datetime
import decimal
import sqlite3

import pytest

from fannode.core import serial
from fannode.hub.budget import measure
from fannode.hub.logdisk import LogDisk
from fannode.hub.logstore import LogState, flat_measure


def rec(**fields):
    base = {'service': 'Hello', 'instance': 'f0e1d2c3', 'pid': 4242, 'host': 'vm', 'kind': 'log',
            'ts': 1796447779.53, 'level': 'INFO', 'logger': 'fannode.web.access',
            'msg': '127.0.0.1 "GET /hello HTTP/1.1" 200 11 0.4ms', 'trace': 'ab' * 16, 'span': 'cd' * 8}
    base.update(fields)
    return base


FLAT = [
    rec(),
    {},
    rec(kind='span', parent='', duration_ms=0.4, ok=True, failed=False, nothing=None, big=2 ** 62, neg=-3),
    rec(msg='ünïcödé ✓ ' * 50, **{'clé': 'välue', '': ''}),
    rec(msg='x' * 70_000),
]


@pytest.mark.parametrize('record', FLAT)
def test_one_pass_sizes_as_the_full_walk_does(record):
    assert flat_measure(record) == measure(record)


@pytest.mark.parametrize('record', [rec(extra={'a': 1}), rec(items=[1, 2]), rec(when=datetime.date(2026, 1, 1)),
                                    rec(raw=b'xx'), {1: 'int key'}, {'a': 1, ('t',): 2}])
def test_anything_but_a_flat_map_of_text_keys_is_left_to_the_full_walk(record):
    assert flat_measure(record) is None


def state(disk=None):
    return LogState(lambda *a: None, disk)


@pytest.mark.parametrize('bad', [
    'not a map', None, [rec()], {1: 'x'}, {**rec(), 2: 'x'},
    rec(ts='yesterday'), rec(ts=True), rec(ts=float('nan')), rec(ts=float('inf')), rec(ts=10 ** 400),
    rec(kind=1), rec(level=['INFO']), rec(service=b'Hello'), rec(trace=3), rec(span={'id': 1}),
])
def test_a_bad_record_is_refused_and_counted_and_costs_nothing_else(bad):
    s = state()
    s.add([rec(msg='before'), bad, rec(msg='after')])
    s.add([rec(msg='next batch')])
    assert [r['msg'] for r, _ in s.kept] == ['before', 'after', 'next batch']
    assert s.budget.refused == 1 and s.received == 3


def test_fields_the_hub_does_not_read_may_hold_anything_the_codec_carries():
    s = state()
    nested = rec(extra={'user': {'id': 7, 'tags': ['a', 'b']}}, ts=1796447779)
    s.add([nested])
    (kept, size), = s.kept
    assert kept is nested and size == measure(nested)[0] + 150  # + the trace's index entry
    assert s.budget.refused == 0


def test_the_ring_on_disk_holds_what_the_codec_would_write(tmp_path):
    disk = LogDisk(str(tmp_path / 'hub.logs.sqlite3'))
    records = [rec(msg='plain'), rec(when=datetime.datetime(2026, 12, 5, 5, 30), amount=decimal.Decimal('1.5')),
               rec(big=2 ** 80, tags={'x'}), rec(msg='after the codec was needed', ok=True, nothing=None)]
    disk.extend(records[:1])
    disk.flush()  # plain values: msgpack's own bytes, as the codec writes them
    disk.extend(records[1:])
    disk.close()  # one needs the codec: the batch is written by it
    blobs = [bytes(b) for b, in sqlite3.connect(str(tmp_path / 'hub.logs.sqlite3')).execute(
        'SELECT records FROM batches ORDER BY id')]
    assert blobs == [serial.dumps(records[:1]), serial.dumps(records[1:])]  # a row per batch
    assert list(reversed(list(LogDisk(str(tmp_path / 'hub.logs.sqlite3')).newest()))) == records


def test_a_ring_written_a_row_per_record_is_taken_over(tmp_path):
    path = str(tmp_path / 'hub.logs.sqlite3')
    db = sqlite3.connect(path)
    db.execute('CREATE TABLE logs (id INTEGER PRIMARY KEY, size INTEGER NOT NULL, record BLOB NOT NULL)')
    old = [rec(msg='old %d' % i) for i in range(3)]
    db.executemany('INSERT INTO logs (size, record) VALUES (?, ?)', [(len(serial.dumps(r)), serial.dumps(r)) for r in old])
    db.commit()
    db.close()
    disk = LogDisk(path)
    assert disk.count == 3
    disk.extend([rec(msg='new')])
    disk.close()
    assert [r['msg'] for r in reversed(list(LogDisk(path).newest()))] == ['old 0', 'old 1', 'old 2', 'new']


def test_a_batch_reaches_the_disk_once_with_the_drop_note(tmp_path):
    s = state(LogDisk(str(tmp_path / 'hub.logs.sqlite3')))
    s.add([rec(msg='one'), 'bad', rec(msg='two')], dropped=3)
    assert [r['msg'][:10] for r in s.disk.pending] == ['3 log reco', 'one', 'two']
    s.close()
