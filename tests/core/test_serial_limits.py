"""The codec's bounds: what a peer sends is decoded within them or refused with the
codec's one ValueError, never a crash; and nothing is encoded that a peer would refuse."""
from __future__ import annotations

import subprocess
import sys

import msgpack
import pytest

from conftest import ROOT
from fannode.core import serial
from fannode.core.serial import dumps, loads


def nested_sets(levels, code=serial.SET):
    """A set (`code`) holding `levels` frozensets, each the only member of the next, as raw msgpack."""
    data = msgpack.packb([])
    for _ in range(levels):
        data = msgpack.packb([msgpack.ExtType(serial.FROZENSET, data)])
    return msgpack.packb(msgpack.ExtType(code, data))


def test_thousands_of_nested_sets_are_refused_not_a_crash():
    # Decoded in a child process: before the bound, this killed the process (SIGSEGV).
    script = ('import msgpack\n'
              'from fannode.core.serial import loads\n'
              'data = msgpack.packb([])\n'
              'for _ in range(3000):\n'
              '    data = msgpack.packb(msgpack.ExtType(7, data))\n'
              'try:\n'
              '    loads(data)\n'
              'except ValueError as e:\n'
              '    print(e)\n')
    done = subprocess.run([sys.executable, '-c', script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == \
        (0, 'cannot decode message: sets nested more than 32 deep ($FANNODE_MAX_DEPTH)'), done.stderr[-2000:]


def test_sets_nest_up_to_the_limit_and_not_one_more():
    assert serial.MAX_DEPTH == 32
    assert loads(nested_sets(serial.MAX_DEPTH - 1)) is not None  # MAX_DEPTH sets in all
    with pytest.raises(ValueError, match=r'^cannot decode message: sets nested more than 32 deep '
                                         r'\(\$FANNODE_MAX_DEPTH\)$'):
        loads(nested_sets(serial.MAX_DEPTH))
    with pytest.raises(ValueError, match='sets nested more than 32 deep'):
        loads(nested_sets(serial.MAX_DEPTH, serial.FROZENSET))


def test_sets_nested_past_the_limit_are_not_encoded_either():
    value: object = frozenset()
    for _ in range(serial.MAX_DEPTH - 1):
        value = frozenset([value])
    assert loads(dumps(value)) == value
    with pytest.raises(ValueError, match=r'^cannot encode message: sets nested more than 32 deep'):
        dumps({'deep': {frozenset([value])}})


def test_a_message_over_the_size_limit_is_refused_both_ways(monkeypatch):
    monkeypatch.setattr(serial, 'MAX_MESSAGE', 1000)
    with pytest.raises(ValueError, match=r'^cannot decode message: 1003 bytes, over the limit of 1000 '
                                         r'\(\$FANNODE_MAX_MESSAGE\)$'):
        loads(msgpack.packb(b'x' * 1000))
    with pytest.raises(ValueError, match=r'^cannot encode message: 1003 bytes, over the limit of 1000'):
        dumps(b'x' * 1000)
    assert loads(dumps(b'x' * 997)) == b'x' * 997  # exactly 1000 bytes


def test_arrays_nested_past_msgpacks_bound_are_named():
    with pytest.raises(ValueError, match='^cannot decode message: arrays and maps nested more than 1024 deep$'):
        loads(b'\x91' * 1100 + b'\x01')


@pytest.mark.parametrize('data, message', [
    (b'\xdd\xff\xff\xff\xff', 'exceeds max_array_len'),     # a header claiming 4 billion elements
    (b'\xdf\xff\xff\xff\xff', 'exceeds max_map_len'),
    (msgpack.packb(msgpack.ExtType(7, b'\xdd\xff\xff\xff\xff')), 'exceeds max_array_len'),  # in a set
    (msgpack.packb(msgpack.ExtType(7, b'\x90\x01')), 'extra bytes after a set payload'),
    (b'\x01\x02', 'extra bytes after the message'),
])
def test_lengths_are_bounded_by_the_message_that_holds_them(data, message):
    with pytest.raises(ValueError, match='^cannot decode message: .*' + message):
        loads(data)


def run_with_env(env, code):
    return subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(__import__('os').environ, **env))


def test_the_limits_are_read_from_the_environment():
    done = run_with_env({'FANNODE_MAX_MESSAGE': '4096', 'FANNODE_MAX_DEPTH': '3'},
                        'from fannode.core import serial; print(serial.MAX_MESSAGE, serial.MAX_DEPTH)')
    assert done.stdout.split() == ['4096', '3'], done.stderr
    done = run_with_env({'FANNODE_MAX_DEPTH': 'deep'}, 'import fannode.core.serial')
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == \
        'fannode.exceptions.ConfigError: $FANNODE_MAX_DEPTH: expected a whole number, got \'deep\''
