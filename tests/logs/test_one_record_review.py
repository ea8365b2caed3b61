"""One record per HTTP request and the ring's row per tick, reviewed from outside: a trim
keeps the tick just written, every row reads back (big ticks, records only the codec
carries), hostile durations break no reader, `tail -n N --spans` shows N, and a follow's
history is in time order."""
from __future__ import annotations

import datetime
import json


from fannode.core import serial
from fannode.hub import logdisk
from fannode.hub.logdisk import LogDisk
from fannode.hub.logstore import Filter, LogState
from fannode.logs import client as logclient
from fannode.logs.records import unpack
from fannode.node import childlogs

WHO = {'service': 'Web', 'instance': 'i1', 'pid': 7, 'host': 'h'}


def carried(i: int, **over) -> dict:
    return dict(WHO, kind='span', ts=100.0 + i, trace='t%d' % i, span='s%d' % i, parent='', type='http',
                name='GET /x', status='ok', duration_ms=1.0, code=200, level='INFO',
                logger='fannode.web.access', msg='GET /x %d 200 1.0ms' % i, **over)


def record(i: int, msg: str = '') -> dict:
    return {'ts': 1000.0 + i, 'kind': 'log', 'level': 'INFO', 'service': 'Greeting', 'trace': '',
            'msg': msg or 'line %d' % i}


# -- 1. the ring on disk -------------------------------------------------------------------

def test_a_trim_never_empties_the_ring_of_the_tick_just_written(tmp_path, monkeypatch):
    monkeypatch.setattr(logdisk, 'KEEP_RECORDS', 1000)
    path = str(tmp_path / 'ring.sqlite3')
    disk = LogDisk(path)
    disk.extend(record(i) for i in range(100))
    disk.flush()
    disk.extend(record(100 + i) for i in range(950))  # one busy tick (a shipper's backlog after an outage)
    disk.flush()
    kept = list(LogDisk(path).newest())
    # before this session the ring kept the newest 900 (DELETE ... OFFSET extra): now nothing
    assert len(kept) >= 900, 'the ring kept %d records of 1050 after a trim' % len(kept)


def test_a_tick_over_max_message_comes_back_after_a_restart(tmp_path):
    path = str(tmp_path / 'ring.sqlite3')
    disk = LogDisk(path)
    big = 'x' * 240_000  # under the hub's MAX_RECORD (256 KiB): each record is accepted
    disk.extend(record(i, big + str(i)) for i in range(75))  # 75 tracebacks in one 10 ms tick: ~18 MB
    disk.flush()
    disk.db.close()
    assert len(big) * 75 > serial.MAX_MESSAGE
    kept = list(LogDisk(path).newest())
    assert len(kept) == 75, 'a hub restarted over the ring got %d of 75 records back' % len(kept)


def test_one_codec_only_record_does_not_lose_the_rest_of_its_tick(tmp_path):
    path = str(tmp_path / 'ring.sqlite3')
    disk = LogDisk(path)
    big = 'x' * 240_000
    disk.extend(record(i, big + str(i)) for i in range(75))
    disk.add(dict(record(99), when=datetime.date(2026, 12, 5)))  # a value msgpack alone cannot pack
    try:
        disk.flush()
    except ValueError:
        pass  # the hub's tick logs it (`_step`) and goes on
    disk.db.close()
    kept = list(LogDisk(path).newest())
    assert len(kept) >= 75, 'the ring kept %d of the tick\'s 76 records' % len(kept)


def test_legacy_ring_is_taken_over_in_order(tmp_path):
    import sqlite3
    path = str(tmp_path / 'ring.sqlite3')
    db = sqlite3.connect(path)
    db.execute('CREATE TABLE logs (id INTEGER PRIMARY KEY, size INTEGER NOT NULL, record BLOB NOT NULL)')
    for i in range(5):
        blob = serial.dumps(record(i))
        db.execute('INSERT INTO logs (size, record) VALUES (?, ?)', (len(blob), blob))
    db.execute('INSERT INTO logs (size, record) VALUES (3, ?)', (b'\xc1\xc1\xc1',))  # a damaged row
    db.commit()
    db.close()
    disk = LogDisk(path)
    assert [r['msg'] for r in disk.newest()] == ['line %d' % i for i in reversed(range(5))]
    assert disk.count == 6


# -- 2. one record per HTTP request: hostile and odd records -----------------------------

def fake_client(monkeypatch, state):
    """A LogClient whose one log hub is `state` (a LogState), answering as the hub's verbs do."""
    class Link:
        def __init__(self, url):
            pass

        def call(self, verb, **query):
            if verb == 'log_follow':
                history = query.pop('history')
                return state.follow(b'p', Filter(**query), history)
            if verb == 'trace':
                return state.trace(query['trace_id'])
            return True

        def close(self):
            pass

    monkeypatch.setattr(logclient, 'HubLink', Link)
    client = logclient.LogClient('tcp://127.0.0.1:1')
    monkeypatch.setattr(client, 'urls', lambda: ['tcp://127.0.0.1:2'])
    return client


def test_a_carried_span_with_a_huge_duration_does_not_break_readers(monkeypatch):
    hostile = carried(1, )
    hostile['duration_ms'] = 10 ** 400
    hostile = serial.loads(serial.dumps(hostile))  # as it crosses the wire
    state = LogState(lambda *a: None)
    state.add([hostile])
    assert state.follow(b'p', Filter(), 10)['records'] == [hostile]  # the hub keeps and hands it out
    parsed = childlogs.parse(json.dumps(dict(hostile)), 9)  # and the node takes it from a child's stderr
    assert parsed is not None
    client = fake_client(monkeypatch, state)
    client.recent()  # `fannode tail --no-follow`: OverflowError, a traceback, nothing shown
    client.trace('t1')  # `fannode trace`
    for spans in (False, True):
        unpack(hostile, spans)  # OverflowError: int too large to convert to float


def test_tail_n_with_spans_prints_at_most_n_records(monkeypatch):
    state = LogState(lambda *a: None)
    state.add([carried(i) for i in range(10)])
    client = fake_client(monkeypatch, state)
    assert len(client.recent(history=4)) == 4  # without spans: N lines, as before
    got = client.recent(spans=True, history=4)
    assert len(got) <= 4, '`tail -n 4 --spans` gave %d records' % len(got)


def test_filters_and_node_parse_on_carried_spans():
    span = carried(1)
    assert Filter().match(span) and Filter(spans=True).match(span)
    assert not Filter(level='WARNING').match(span)
    assert not Filter(level='WARNING', spans=True).match(span)
    assert not Filter(services=['other']).match(span)
    assert not Filter().match(dict(span, msg=5)) and Filter(spans=True).match(dict(span, msg=5))
    for odd in (dict(span, level=['x']), dict(span, level=None), dict(span, msg=None), dict(span, ts='x')):
        Filter(level='INFO').match(odd)  # no exception
        unpack(odd)
    assert childlogs.parse(json.dumps(dict(span, level=['x'])), 1) is None
    assert childlogs.parse(json.dumps(dict(span, msg=['x'])), 1) is None
    line = unpack(span, spans=False)
    assert len(line) == 1 and line[0]['kind'] == 'log' and line[0]['ts'] == 101.001


def test_the_node_goes_on_printing_after_an_odd_carried_span():
    from types import SimpleNamespace

    from fannode.node.block import Block
    from fannode.node.output import LineSink
    printed, forwarded = [], []
    node = SimpleNamespace(printer=SimpleNamespace(line=lambda name, index, text: printed.append(text),
                                                   record=lambda record: None),
                           forwarder=SimpleNamespace(add=forwarded.append))
    block = SimpleNamespace(index={9: 0}, name='web', log_seen=set(), node=node,
                            spec=SimpleNamespace(runs_fannode=True, ready=SimpleNamespace(kind='registered'),
                                                 logs=None))
    sink = LineSink(lambda pid, line: Block.on_line(block, pid, line, 'stderr'))
    odd = json.dumps(dict(carried(1), duration_ms=10 ** 400))
    fine = json.dumps(dict(WHO, kind='log', ts=1.0, level='INFO', logger='x', msg='after', trace='', span=''))
    try:
        sink({'pid': 9, 'data': (odd + '\n' + fine + '\n').encode()})
    except OverflowError:
        pass  # what circus' stream redirector gets
    assert any('after' in text for text in printed), printed
    assert [r.get('msg') for r in forwarded][-1:] == ['after']


def test_tail_history_shows_the_access_line_after_the_lines_of_its_request(monkeypatch):
    state = LogState(lambda *a: None)
    inside = dict(WHO, kind='log', ts=100.1, level='INFO', logger='app', msg='About to greet Ann', trace='t1',
                  span='s1')
    request = dict(carried(0), ts=100.0, duration_ms=250.0, msg='GET /greet?name=Ann 200 250.0ms')  # GET ... 200 250.0ms, ended at 100.25
    state.add([inside, request])  # as they arrive: the span when the request ended

    class Link:
        def __init__(self, url, on_notify=None):
            pass

        def call(self, verb, **query):
            history = query.pop('history')
            return state.follow(b'p', Filter(**query), history)

        def start(self, loop):
            pass

    # `tail --no-follow` re-sorts after unpacking, and is right
    client = fake_client(monkeypatch, state)
    assert [r['msg'] for r in client.recent()] == ['About to greet Ann', request['msg']]
    monkeypatch.setattr(logclient, 'HubLink', Link)
    shown = []
    following = logclient.Following('hub://x', shown.append, {'services': [], 'level': '', 'trace': '',
                                                                'spans': False})
    following._follow(20)
    # the old records (two of them) came in ts order: the request's line, then its access line
    assert [r['msg'] for r in shown] == ['About to greet Ann', request['msg']], [r['msg'] for r in shown]
