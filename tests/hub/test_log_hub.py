"""The log hub's state: records kept within a budget, filters, traces by id or prefix, drops said."""
from fannode.hub import logstore
from fannode.hub.budget import footprint
from fannode.hub.logstore import Filter, LogState


def rec(msg, service='Greeting', pid=1, level='INFO', trace='', kind='log', ts=0.0):
    return {'kind': kind, 'service': service, 'instance': 'i%d' % pid, 'pid': pid, 'host': 'h', 'ts': ts,
            'level': level, 'logger': 'x', 'msg': msg, 'trace': trace, 'span': ''}


def state():
    pushed = []
    return LogState(lambda peer, subject, body: pushed.append((peer, subject, body))), pushed


def test_followers_get_what_matches_numbered_and_history_first():
    s, pushed = state()
    s.add([rec('old', ts=1), rec('other', service='Listen', ts=2)])
    answer = s.follow(b'p', Filter(['greeting']), history=10)  # any case
    assert [r['msg'] for r in answer['records']] == ['old']
    s.add([rec('new', ts=3), rec('skip', service='Listen', ts=4)])
    s.add([rec('debug', level='DEBUG', ts=5), rec('again', ts=6)])
    assert [(b['n'], [r['msg'] for r in b['records']]) for _, _, b in pushed] == [(1, ['new']), (2, ['debug', 'again'])]


def test_level_trace_prefix_and_spans_filters():
    f = Filter(level='warning', trace='abcd')
    assert f.match(rec('x', level='ERROR', trace='abcdef'))
    assert not f.match(rec('x', level='INFO', trace='abcdef'))
    assert not f.match(rec('x', level='ERROR', trace='ffff'))
    span = {k: v for k, v in rec('x', kind='span').items() if k not in ('level', 'logger', 'msg')}
    assert not Filter().match(span) and Filter(spans=True).match(span)
    # a span that carries its access line (an HTTP request's) is that line for whoever wants lines
    assert Filter().match(rec('GET / 200 1.0ms', kind='span'))
    assert not Filter(level='warning').match(rec('GET / 200 1.0ms', kind='span'))
    # an instance serving two interfaces writes service "A,B": either name matches
    assert Filter(['b']).match(rec('x', service='A,B'))


def test_a_trace_is_found_by_id_or_unique_prefix_in_time_order():
    s, _ = state()
    s.add([rec('second', trace='aaaa1111', ts=2), rec('first', trace='aaaa1111', ts=1), rec('b', trace='aaab2222')])
    assert [r['msg'] for r in s.trace('aaaa1111')] == ['first', 'second']
    assert [r['msg'] for r in s.trace('aaaa')] == ['first', 'second']
    assert s.trace('aaa') == []  # two traces start with it


def test_drops_are_reported_as_a_record():
    s, pushed = state()
    s.follow(b'p', Filter(), history=0)
    s.add([rec('after the gap')], dropped=7)
    msgs = [r['msg'] for r in pushed[0][2]['records']]
    assert msgs[0].startswith('7 log record(s) dropped') and msgs[1] == 'after the gap'


def test_the_oldest_records_go_first_when_the_budget_is_full_and_are_counted():
    s, _ = state()
    size = footprint(rec('0', trace='t0'))
    s.budget.limit = 3 * (size + logstore.TRACE_COST) + 10
    s.add([rec(str(i), trace='t%d' % i) for i in range(5)])
    assert [r['msg'] for r, _ in s.kept] == ['2', '3', '4']
    assert sorted(s.traces) == ['t2', 't3', 't4'] and s.trace('t1') == []
    assert s.budget.used <= s.budget.limit and s.stats()['dropped'] == 2


def test_silent_followers_are_forgotten(monkeypatch):
    s, pushed = state()
    s.follow(b'p', Filter(), history=0)
    assert s.alive(b'p')
    monkeypatch.setattr(logstore, 'FOLLOWER_TTL', -1.0)
    s.alive(b'p')
    s.expire()
    assert not s.alive(b'p')
    s.add([rec('nobody')])
    assert pushed == []
