"""Hypothesis strategies for hub requests, derived from what each verb declares
(fannode/hub/schema.py): a verb or field added later is fuzzed without touching this.

For every spec there are values of the right shape (`good`), values of the right shape
whose parts may be wrong (`hostile`) and values that are wrong at that very spot (`bad`):
wrong types, one past each bound, NaN, integers too big for a float, huge strings and
lists, unknown and missing fields.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from hypothesis import strategies as st

from chaostools import next_id
from fannode.core import serial, wire
from fannode.core.events import check_pattern, check_type
from fannode.core.keys import check_key
from fannode.hub import schema
from fannode.hub import server as hub_server
from fannode.hub.server import Hub

VERBS = sorted(name[4:] for name, f in vars(Hub).items() if name.startswith('rpc_') and hasattr(f, 'args'))

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 64 - 1), st.floats(),
                    st.text(max_size=20), st.binary(max_size=20))
RICH = st.one_of(SCALARS, st.decimals(allow_nan=True), st.datetimes(timezones=st.none() | st.timezones()),
                 st.dates(), st.times(), st.timedeltas(), st.uuids(), st.integers(),
                 st.frozensets(st.integers() | st.text(max_size=5), max_size=3))
HASHABLE = st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans(), st.binary(max_size=8),
                     st.floats(allow_nan=False), st.frozensets(st.integers(), max_size=2))
VALUES = st.recursive(RICH, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(st.text(max_size=8) | HASHABLE, inner,
                                                                    max_size=4)), max_leaves=10)
# Values of the wrong kind wherever they are put, numbers past any float among them.
JUNK = st.one_of(VALUES, st.sampled_from([10 ** 400, -10 ** 400, 2 ** 64, -2 ** 63 - 1, math.nan, math.inf,
                                          -math.inf, True, False, None, '', b'', [], {}]))

WORD = st.from_regex(r'[A-Za-z0-9_-]{1,5}', fullmatch=True)
# Long dotted names and many '#' words: what topic matching has to cope with.
TYPES = st.lists(st.sampled_from(['a', 'b', 'order', 'paid']) | WORD, min_size=1, max_size=30).map('.'.join)
PATTERNS = st.lists(st.sampled_from(['#', '#', '*', 'a', 'x']) | WORD, min_size=1, max_size=20).map('.'.join)
KEYS = st.lists(WORD, min_size=1, max_size=4).map('.'.join)
LEVELS = st.sampled_from(['', 'debug', 'INFO', 'Warning', 'error', 'CRITICAL'])
# Names the fuzz reuses, so one request meets what another made (a queue, a consumer).
NAMES = st.sampled_from(['q1', 'q2', 'c1', 'c2', 'Echo', 'a.b', 'i1']) | st.text(min_size=1, max_size=12)
CHECKED: dict[Any, st.SearchStrategy] = {check_type: TYPES, check_pattern: PATTERNS, check_key: KEYS,
                                         hub_server._level: LEVELS}

Mode = Callable[[schema.Spec], st.SearchStrategy]


def _most(spec: schema.Str | schema.ListOf | schema.MapOf, default: int) -> int:
    return default if spec.max is None else spec.max


def shaped(spec: schema.Spec, part: Mode) -> st.SearchStrategy:
    """Values of the shape `spec` declares, each part drawn with `part`."""
    if isinstance(spec, schema.Maybe):
        return st.none() | part(spec.inner)
    if isinstance(spec, schema.Str):
        most = _most(spec, schema.MAX_NAME)
        base = CHECKED.get(spec.test, NAMES | st.just('') if spec.min == 0 else NAMES)
        return base.filter(lambda s: spec.min <= len(s) <= most)
    if isinstance(spec, schema.Number):
        ints = st.integers(math.ceil(spec.low), int(min(spec.high, 2 ** 63 - 1)))
        return ints if spec.whole else ints | st.floats(spec.low, spec.high)
    if isinstance(spec, schema.Bool):
        return st.booleans()
    if isinstance(spec, schema.ListOf):
        return st.lists(part(spec.item), min_size=spec.min, max_size=spec.min + 3)
    if isinstance(spec, schema.MapOf):
        keys = part(spec.key) if part is good else good(spec.key) | HASHABLE
        return st.dictionaries(keys, part(spec.value), max_size=3)
    if isinstance(spec, schema.Map):
        return st.dictionaries(st.text(max_size=8) | HASHABLE, VALUES, max_size=4)
    if isinstance(spec, schema.Fields):
        return st.fixed_dictionaries({n: part(s) for n, s in spec.required.items()},
                                     optional={n: part(s) for n, s in spec.optional.items()})
    if isinstance(spec, schema.Anything):
        return VALUES
    raise AssertionError('no strategy for %r: add one to tests/chaos/hubinputs.py' % spec)


def bad(spec: schema.Spec) -> st.SearchStrategy:
    """Values that break `spec` right there."""
    if isinstance(spec, schema.Maybe):
        return bad(spec.inner)
    if isinstance(spec, schema.Str):
        most = _most(spec, schema.MAX_NAME)
        return st.one_of(JUNK, st.sampled_from(['x' * (most + 1), 'y' * (1 << 20), '', '\x1b[2J\n', 'a\x00b']),
                         st.text(max_size=40))
    if isinstance(spec, schema.Number):
        # past each end, and integers no float holds (math.isfinite raises on them)
        edges = [spec.low - 1, spec.high + 1, spec.high * 2 + 10 ** 19, 10 ** 400, -10 ** 400, 2 ** 1024]
        if spec.whole:
            edges += [spec.low + 0.5, float(spec.low)]
        return st.one_of(JUNK, st.sampled_from(edges), st.integers())
    if isinstance(spec, schema.Bool):
        return st.one_of(JUNK, st.sampled_from([0, 1, 'true', 'false']))
    if isinstance(spec, schema.ListOf):
        most = _most(spec, schema.MAX_ITEMS)
        return st.one_of(JUNK, good(spec.item).map(lambda item: [item] * (most + 1)),
                         st.lists(bad(spec.item), min_size=1, max_size=3))
    if isinstance(spec, schema.MapOf):
        most = _most(spec, schema.MAX_ITEMS)
        return st.one_of(JUNK, good(spec.value).map(lambda v: {'k%d' % i: v for i in range(most + 1)}),
                         st.dictionaries(HASHABLE, bad(spec.value), min_size=1, max_size=2))
    if isinstance(spec, schema.Map):
        return JUNK.filter(lambda v: type(v) is not dict)
    if isinstance(spec, schema.Fields):
        missing = [st.fixed_dictionaries({n: good(s) for n, s in spec.required.items() if n != name})
                   for name in spec.required]
        return st.one_of(JUNK, *missing, good(spec).map(lambda d: dict(d, evil=1)),
                         good(spec).map(lambda d: dict(d, **{'': None})), good(spec).map(lambda d: {1: 2, **d}))
    if isinstance(spec, schema.Anything):
        return st.just('z' * (spec.max + 1)) if spec.max is not None else VALUES
    raise AssertionError('no strategy for %r: add one to tests/chaos/hubinputs.py' % spec)


def good(spec: schema.Spec) -> st.SearchStrategy:
    return shaped(spec, good)


def hostile(spec: schema.Spec) -> st.SearchStrategy:
    return choose((3, shaped(spec, hostile)), (1, bad(spec)))


def choose(*options: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, in proportion to their weights. (st.one_of flattens nested
    one_ofs into one list of branches, so the many ways of being bad would crowd out the
    one way of being right, and no request would get past its first field.)"""
    return st.sampled_from([s for weight, s in options for _ in range(weight)]).flatmap(lambda s: s)


def arguments(verb: str) -> schema.Fields:
    """A verb's arguments as one Fields spec: those without a default are required."""
    declared = getattr(Hub, 'rpc_' + verb).args
    return schema.Fields({n: s for n, (s, required) in declared.items() if required},
                         {n: s for n, (s, required) in declared.items() if not required})


BODIES = {verb: choose((2, good(arguments(verb))), (3, hostile(arguments(verb))), (1, bad(arguments(verb))))
          for verb in VERBS}

SUBJECTS = st.sampled_from(['hub.', 'hub.rpc_ping', 'hub.__init__', 'hub.ping.x', 'Hub.ping', 'hub.stop',
                            'hub.resolve', 'hub.' + 'p' * 300, 'hub.\x1b[2J', 'hub.args', '']) \
    | st.text(max_size=20).map('hub.'.__add__) | JUNK
TRACES = st.one_of(st.just(''), st.none(), st.from_regex(r'[0-9a-f]{32}', fullmatch=True),
                   st.text(max_size=70), JUNK)
# No deadline, or one no request waits out: a request skipped for its deadline is silent.
DEADLINES = st.one_of(st.just(0), st.none(), st.integers(60_000, 2 ** 64 - 1), st.integers(max_value=-1),
                      JUNK.filter(lambda v: not (type(v) is int and 0 < v < 60_000)))
HEADERS = st.one_of(st.just({}), st.just({'ack': True}), st.just({'oneway': 1}),
                    st.dictionaries(st.text(max_size=8), SCALARS, max_size=4),
                    st.just({'h%d' % i: 1 for i in range(33)}), JUNK)


@st.composite
def verb_requests(draw: Any) -> dict[str, Any]:
    """A request for one verb, in a plain envelope, with a body for that verb."""
    verb = draw(st.sampled_from(VERBS))
    return {'subject': 'hub.' + verb, 'body': draw(BODIES[verb])}


@st.composite
def odd_requests(draw: Any) -> dict[str, Any]:
    """A request whose subject may be no verb, whose envelope may be wrong, and whose body
    may be any value at all."""
    verb = draw(st.sampled_from(VERBS))
    return {'subject': draw(choose((1, st.just('hub.' + verb)), (1, SUBJECTS))),
            'body': draw(choose((1, BODIES[verb]), (1, VALUES))),
            'trace_id': draw(TRACES), 'span_id': draw(TRACES), 'deadline_ms': draw(DEADLINES),
            'headers': draw(HEADERS)}


@st.composite
def raw_frames(draw: Any, subject: str = 'hub.ping') -> bytes:
    """Bytes as they might arrive in a frame: anything, any msgpack value, a request for
    `subject` with any value in any field, any of these cut short or with bytes changed."""
    kind = draw(st.sampled_from(['bytes', 'value', 'request', 'short array']))
    if kind == 'bytes':
        data = draw(st.binary(max_size=300))
    elif kind == 'value':
        data = serial.dumps(draw(JUNK))
    elif kind == 'short array':
        data = b''.join([bytes([0x90 + draw(st.integers(0, 15))]), *(serial.dumps(draw(VALUES)) for _ in range(3))])
    else:
        fields = [1, wire.REQ, next_id(), subject, '', '', 0, {}, {}]
        at = draw(st.integers(0, 8))
        fields[at] = draw(JUNK)
        data = serial.dumps(fields)
    if data and draw(st.booleans()):
        mutated = bytearray(data)
        for at, byte in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=4)):
            mutated[at] = byte
        data = bytes(mutated[:draw(st.integers(0, len(data)))] if draw(st.booleans()) else mutated)
    return data
