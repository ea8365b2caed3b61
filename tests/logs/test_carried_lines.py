"""A span that carries its log line (an HTTP request's span and its access line, one record):
shipped and written once, shown as the two it stands for, and any other shape left alone."""
import io
import json
import logging

from fannode.core import logsetup
from fannode.logs.records import carries_line, unpack
from fannode.node import childlogs

WHO = {'service': 'Web', 'instance': 'i1', 'pid': 7, 'host': 'h'}
CARRIED = dict(WHO, kind='span', ts=100.0, trace='t1', span='s1', parent='', type='http', name='GET /x',
               status='ok', duration_ms=250.0, code=200, level='INFO', logger='fannode.web.access',
               msg='GET /x?a=1 200 250.0ms')


def test_unpack_gives_the_span_and_the_line_it_stood_for():
    span, line = unpack(CARRIED)
    assert span == {k: v for k, v in CARRIED.items() if k not in ('level', 'logger', 'msg')}
    assert line == dict(WHO, kind='log', ts=100.25, level='INFO', logger='fannode.web.access',
                        msg='GET /x?a=1 200 250.0ms', trace='t1', span='s1')
    assert list(line) == ['service', 'instance', 'pid', 'host', 'kind', 'ts', 'level', 'logger', 'msg',
                          'trace', 'span']  # a log record's own order, as `tail --json` printed it
    assert unpack(CARRIED, spans=False) == [line]


def test_any_other_record_is_left_as_it_came():
    plain_span = {k: v for k, v in CARRIED.items() if k != 'msg'}
    odd = [plain_span, dict(CARRIED, kind='log'), dict(CARRIED, msg=3), 'text', None, [1], {}]
    for record in odd:
        assert unpack(record) == [record] and unpack(record, spans=False) == [record]
        assert not carries_line(record)
    # a time that is not one: the line keeps the span's
    assert unpack(dict(CARRIED, ts='soon'))[1]['ts'] == 'soon'
    assert unpack(dict(CARRIED, duration_ms=None))[1]['ts'] == 100.0


def test_the_node_takes_a_carried_line_only_with_a_known_level():
    line = json.dumps(CARRIED)
    assert childlogs.parse(line, 9)['msg'] == CARRIED['msg']
    assert childlogs.parse(json.dumps(dict(CARRIED, level='LOUD')), 9) is None  # then it is text
    assert childlogs.parse(json.dumps(dict(CARRIED, msg=['x'])), 9) is None


def test_a_carried_line_is_written_as_text_but_never_shipped_or_written_as_a_record():
    shipped = []
    logger = logging.getLogger('test.carried')
    forwarder = logsetup.Forwarder(shipped.append, WHO)
    stream = io.StringIO()
    as_json = logging.StreamHandler(stream)
    as_json.setFormatter(logsetup.JsonFormatter(WHO))
    as_json.addFilter(logsetup.not_carried)
    as_text = io.StringIO()
    text = logging.StreamHandler(as_text)
    for handler in (forwarder, as_json, text):
        logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning('carried', extra={logsetup.CARRIED: True})
        logger.warning('alone')
    finally:
        for handler in (forwarder, as_json, text):
            logger.removeHandler(handler)
    assert [r['msg'] for r in shipped] == ['alone']
    assert [json.loads(line)['msg'] for line in stream.getvalue().splitlines()] == ['alone']
    assert as_text.getvalue().splitlines() == ['carried', 'alone']

