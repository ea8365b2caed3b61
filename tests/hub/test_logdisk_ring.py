"""The log hub's ring on disk: what a new LogState over the same file answers."""
from __future__ import annotations

from fannode.hub import logdisk
from fannode.hub.logdisk import LogDisk, ring_path
from fannode.hub.logstore import Filter, LogState


def record(i: int, trace: str = '') -> dict:
    return {'ts': 1000.0 + i, 'kind': 'log', 'level': 'INFO', 'service': 'Greeting', 'trace': trace,
            'msg': 'line %d' % i}


def test_tail_and_trace_answer_the_same_from_a_new_hub_over_the_same_file(tmp_path):
    path = str(tmp_path / 'hub.logs.sqlite3')
    old = LogState(lambda *a: None, LogDisk(path))
    old.add([record(i, trace='abc123' if i % 10 == 0 else '') for i in range(500)])
    old.flush()
    tail = old.follow(b'a', Filter(), 50)['records']
    trace = old.trace('abc1')
    old.disk.db.close()  # as a SIGKILL leaves it: nothing more written, nothing closed cleanly

    new = LogState(lambda *a: None, LogDisk(path))
    assert new.follow(b'a', Filter(), 50)['records'] == tail
    assert new.trace('abc1') == trace and len(trace) == 50
    assert new.stats()['records'] == 500
    new.close()


def test_records_not_yet_flushed_are_written_on_close_and_the_ring_is_trimmed_in_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(logdisk, 'KEEP_RECORDS', 1000)
    path = str(tmp_path / 'ring.sqlite3')
    disk = LogDisk(path)
    for n in range(30):
        for i in range(100):
            disk.add(record(n * 100 + i))
        disk.flush()
        assert disk.count <= 1000
    disk.add(record(3000))
    disk.close()
    kept = list(reversed(list(LogDisk(path).newest())))
    assert 900 - 100 < len(kept) <= 1000  # trimmed to 90% or less, a batch (a row) at a time
    assert [r['msg'] for r in kept[-2:]] == ['line 2999', 'line 3000']
    assert [r['ts'] for r in kept] == sorted(r['ts'] for r in kept)


def test_the_ring_sits_beside_the_journal_and_a_hub_without_a_journal_has_none():
    assert ring_path('/s/hub-127.0.0.1-4010.sqlite3') == '/s/hub-127.0.0.1-4010.logs.sqlite3'
    assert ring_path('/s/j.db') == '/s/j.db.logs.sqlite3'
    assert ring_path(None) is None and ring_path(':memory:') is None
