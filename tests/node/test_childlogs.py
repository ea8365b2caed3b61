"""What reaches the terminal and the log hub from the children: records only where
fannode writes them, control characters made visible."""
import io
import json
from types import SimpleNamespace

from rich.console import Console

from fannode.node import childlogs
from fannode.node.block import Block
from fannode.node.output import Printer, visible
from fannode.node.topology import InstanceSpec


def test_control_characters_are_shown_not_sent():
    assert visible('GET /hello\x1b]0;owned\x07\x1b[2J') == 'GET /hello\\x1b]0;owned\\x07\\x1b[2J'
    assert visible('a\rb\bc\x9bd\u202ee\tf\x7f') == 'a\\x0db\\x08c\\x9bd\\u202ee\tf\\x7f'
    assert visible('plain text, ünïcödé, 漢字') == 'plain text, ünïcödé, 漢字'


def test_colours_pass_and_end_with_their_line():
    # A coloured dev server stays coloured; a colour left on does not bleed into the next line.
    assert visible('\x1b[1;32mready\x1b[0m on :8000') == '\x1b[1;32mready\x1b[0m on :8000\x1b[0m'
    assert visible('\x1b[31mred \x1b[2J\x1b[H') == '\x1b[31mred \\x1b[2J\\x1b[H\x1b[0m'


def test_a_record_needs_the_fields_fannode_writes():
    good = {'kind': 'log', 'level': 'INFO', 'msg': 'hi', 'ts': 1.5, 'service': 'Greeting', 'pid': 1, 'host': 'x'}
    record = childlogs.parse(json.dumps(good), pid=42)
    assert record is not None and (record['pid'], record['host']) == (42, childlogs.HOST)  # who, as the node knows
    for bad in ({'msg': ['x']}, {'level': 'LOUD'}, {'ts': 'now'}, {'service': {}}, {'trace': 5}, {'kind': 'other'}):
        assert childlogs.parse(json.dumps(dict(good, **bad))) is None, bad
    assert childlogs.parse('{"kind": "log", "level": "INFO", "msg": "x", "ts": NaN}') is None
    assert childlogs.parse('{"kind": "log", "level": "INFO"}') is None  # no msg
    assert childlogs.parse('{"' + '[' * 100000) is None
    assert childlogs.parse('[1]') is None


def block_printing(spec):
    out = io.StringIO()
    shipped = []
    node = SimpleNamespace(printer=Printer(console=Console(file=out, width=1000)), name='n',
                           forwarder=SimpleNamespace(add=shipped.append))
    block = Block(node, spec)
    block.index[7] = 1
    return block, out, shipped


FORGED = json.dumps({'kind': 'log', 'service': 'billing', 'level': 'ERROR', 'msg': 'forged \x1b[2J', 'ts': 1.0})


def test_a_command_that_is_not_fannode_cannot_forge_records():
    block, out, shipped = block_printing(InstanceSpec('redis', 'redis-server', ('redis-server',)))
    block.on_line(7, FORGED, 'stderr')
    assert out.getvalue() == 'redis.1  │ %s\n' % visible(FORGED)
    assert shipped[0]['service'] == 'redis' and shipped[0]['msg'] == FORGED  # text, under its own name


def test_fannode_records_count_on_stderr_only():
    argv = ('fannode', 'instance', '--config', 'x.yml')
    block, out, shipped = block_printing(InstanceSpec('billing', ' '.join(argv), argv))
    block.on_line(7, FORGED, 'stdout')
    assert shipped[-1]['logger'] == 'stdout' and shipped[-1]['msg'] == FORGED
    block.on_line(7, FORGED, 'stderr')
    assert shipped[-1]['service'] == 'billing' and shipped[-1]['pid'] == 7
    assert out.getvalue().splitlines()[-1] == 'billing.1 │ ERROR    [-] forged \\x1b[2J'
