"""The wire codec: msgpack plus a few extension types. No pickle, ever.

    dumps(obj) -> bytes
    loads(data) -> object

Plain msgpack types (None, bool, int, float, str, bytes, list, dict) map as usual, with
`use_bin_type=True` (bytes and str stay distinct) and `raw=False` (str comes back as str).
Things that do not survive the trip unchanged, by design:

- tuples come back as lists (msgpack has one array type); inside a set or frozenset,
  where lists cannot live, arrays come back as tuples instead;
- bytearray and memoryview come back as bytes;
- subclasses come back as their base (an IntEnum as int, an OrderedDict as dict);
- map keys may be any decodable hashable value (ints, frozensets, datetimes...), but a
  tuple key comes back as a list and cannot be decoded: use str or int keys;
- a msgpack timestamp (ext -1) from another sender decodes as an aware UTC datetime.

Extension types. All integers are big-endian; "int64" means two's complement.

    code  type       payload
    ----  ---------  ----------------------------------------------------------------
    1     datetime   int64 wall-clock microseconds since 1970-01-01T00:00:00 (the local
                     date and time as written, proleptic Gregorian, no zone applied),
                     then a zone block (below)
    2     date       int32 days since 1970-01-01
    3     time       int64 microseconds since midnight, then a zone block (below)
    4     timedelta  int64 whole seconds (floored, so -1.5 s is -2 s + 500000 us),
                     then uint32 microseconds 0..999999
    5     Decimal    the ASCII text of str(value): '-0', '1.50', 'NaN', 'sNaN',
                     '-Infinity', '1E+999999999'
    6     UUID       the 16 bytes of the UUID (RFC 4122 order)
    7     set        a msgpack array of the elements, encoded with this same codec
    8     frozenset  as 7
    9     int        signed two's complement big-endian integer of any length; only
                     used outside msgpack's native range (-2**63 .. 2**64-1)

    Zone block (codes 1 and 3): one flags byte, then a tail chosen by it.
      bit 0 of flags:  fold (0 or 1, see PEP 495)
      bits 1-2:        0  naive; no tail
                       1  fixed UTC offset; tail is int64 offset in microseconds, east
                          of UTC positive (datetime.timezone, or any other tzinfo
                          reduced to its offset for that value)
                       2  IANA zone; tail is the zone key in UTF-8 ('Europe/Paris')
      other bits are zero.

A fixed-offset zone comes back as datetime.timezone with the same offset (a name given
to it is not kept); a zoneinfo.ZoneInfo comes back as ZoneInfo with the same key. An
aware value whose tzinfo reports no offset is sent as naive. Sets are written in their
iteration order, so equal sets may encode to different bytes.

Limits. What is decoded comes from the network, so both directions keep to them (what
one side refuses to decode, the other refuses to encode):

- a message is at most MAX_MESSAGE bytes ($FANNODE_MAX_MESSAGE);
- sets and frozensets nest at most MAX_DEPTH deep ($FANNODE_MAX_DEPTH). Each level is
  decoded by a call of its own from msgpack's ext hook, so this depth is what costs C
  stack: unbounded, 300 levels in 1.4 KB crashed the process;
- arrays and maps nest at most 1024 deep within each level: msgpack's own fixed bound
  (it decodes them without recursion);
- every length msgpack reads (str, bin, array, map, ext) is bounded by the size of the
  message or payload that holds it, so no header can make it allocate more than that.

A violation is the codec's ValueError ('cannot decode message: ...' / 'cannot encode
message: ...'), naming the limit and its variable.
"""
from __future__ import annotations

import struct
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from functools import lru_cache, partial
from typing import Callable
from uuid import UUID
from zoneinfo import ZoneInfo

from msgpack import ExtraData, ExtType, Packer, StackError, Unpacker, unpackb

from fannode.core.limits import MIB, setting

__all__ = ['dumps', 'loads', 'MAX_MESSAGE', 'MAX_DEPTH']

# The largest message, either way: the RPC frame limit too (ZMQ_MAXMSGSIZE, fannode.zmqrpc).
MAX_MESSAGE = setting('FANNODE_MAX_MESSAGE', 16 * MIB, 1024)
# How deep sets and frozensets may nest in one another.
MAX_DEPTH = setting('FANNODE_MAX_DEPTH', 32, 1)

DATETIME, DATE, TIME, TIMEDELTA, DECIMAL, UUID_, SET, FROZENSET, BIGINT = range(1, 10)

_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_US = timedelta(microseconds=1)
_NAIVE, _FIXED, _NAMED = 0, 1, 2

_HEAD = struct.Struct('>qB')        # microseconds, flags: datetime and time
_INT64 = struct.Struct('>q')        # fixed zone offset
_DAYS = struct.Struct('>i')         # date
_DELTA = struct.Struct('>qI')       # timedelta


def dumps(obj: object) -> bytes:
    """Encode `obj` as one msgpack message. TypeError if something in it has no encoding,
    ValueError if the message breaks a limit (too big, nested too deep)."""
    try:
        data = _pack(obj, _TOP_DEFAULT)
    except TypeError:
        raise
    except (ValueError, OverflowError, RecursionError) as e:
        raise ValueError('cannot encode message: %s' % _reason(e)) from None
    if len(data) > MAX_MESSAGE:
        raise ValueError('cannot encode message: %s' % _too_big(len(data)))
    return data


def loads(data: bytes | memoryview) -> object:
    """Decode one message made by `dumps`. ValueError if it is not one, or breaks a limit."""
    size = len(data)
    if size > MAX_MESSAGE:
        raise ValueError('cannot decode message: %s' % _too_big(size))
    try:
        return unpackb(data, ext_hook=_TOP_HOOK, raw=False, strict_map_key=False, timestamp=3,
                       max_str_len=size, max_bin_len=size, max_array_len=size,
                       max_map_len=size // 2, max_ext_len=size)
    except Exception as e:
        # Malformed frames come from the network: one exception type for callers to catch.
        raise ValueError('cannot decode message: %s' % _reason(e)) from e


def _pack(obj: object, default: Callable[[object], ExtType]) -> bytes:
    # A fresh Packer per call is what msgpack.packb does, minus packb's **kwargs re-packing,
    # which alone made the call 2x slower; no Packer is shared, so this is thread-safe
    # and re-entrant (set encoding calls back in here).
    return Packer(default=default, use_bin_type=True, datetime=False).pack(obj)


def _too_big(size: int) -> str:
    return '%d bytes, over the limit of %d ($FANNODE_MAX_MESSAGE)' % (size, MAX_MESSAGE)


class _TooDeep(ValueError):
    def __init__(self) -> None:
        super().__init__('sets nested more than %d deep ($FANNODE_MAX_DEPTH)' % MAX_DEPTH)


def _reason(e: BaseException) -> str:
    """msgpack's errors in words: several of them have no message at all."""
    if isinstance(e, StackError):
        return 'arrays and maps nested more than 1024 deep'
    if isinstance(e, ExtraData):
        return 'extra bytes after the message'
    if isinstance(e, RecursionError):
        return 'nested too deep'
    text = str(e)
    if text == 'recursion limit exceeded.':
        return 'arrays and maps nested too deep'
    return text or type(e).__name__


# -- encoding ---------------------------------------------------------------------------

def _zone(value: datetime | time) -> tuple[int, bytes]:
    """The zone kind (flags bits 1-2) and the tail that goes with it."""
    tz = value.tzinfo
    if tz is None:
        return _NAIVE, b''
    if isinstance(tz, ZoneInfo) and tz.key is not None:
        return _NAMED, tz.key.encode()
    offset = value.utcoffset()
    if offset is None:
        return _NAIVE, b''
    return _FIXED, _INT64.pack(offset // _US)


def _enc_datetime(dt: datetime) -> ExtType:
    if dt.tzinfo is None:
        return ExtType(DATETIME, _HEAD.pack((dt - _EPOCH) // _US, dt.fold))
    kind, tail = _zone(dt)
    wall = dt.replace(tzinfo=None)
    return ExtType(DATETIME, _HEAD.pack((wall - _EPOCH) // _US, dt.fold | kind << 1) + tail)


def _enc_date(d: date) -> ExtType:
    return ExtType(DATE, _DAYS.pack(d.toordinal() - _EPOCH_ORDINAL))


def _enc_time(t: time) -> ExtType:
    micros = ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond
    kind, tail = _zone(t)
    return ExtType(TIME, _HEAD.pack(micros, t.fold | kind << 1) + tail)


def _enc_timedelta(td: timedelta) -> ExtType:
    return ExtType(TIMEDELTA, _DELTA.pack(td.days * 86400 + td.seconds, td.microseconds))


def _enc_decimal(d: Decimal) -> ExtType:
    return ExtType(DECIMAL, str(d).encode('ascii'))


def _enc_uuid(u: UUID) -> ExtType:
    return ExtType(UUID_, u.bytes)




def _enc_bigint(n: int) -> ExtType:
    # Only reached when msgpack overflows; one spare bit for the sign.
    return ExtType(BIGINT, n.to_bytes((n.bit_length() + 8) // 8, 'big', signed=True))


# Exact types first (one dict lookup); subclasses fall back to the ordered scan. Sets
# are apart: they hold values, so their encoder needs the depth. datetime must come
# before date: it is a subclass of it.
_SUBCLASS_ENCODERS: list[tuple[type, Callable[..., ExtType]]] = [
    (datetime, _enc_datetime), (date, _enc_date), (time, _enc_time),
    (timedelta, _enc_timedelta), (Decimal, _enc_decimal), (UUID, _enc_uuid),
    (int, _enc_bigint),
]
_ENCODERS = dict(_SUBCLASS_ENCODERS)


def _default(level: int, obj: object) -> ExtType:
    """Packer's hook for what msgpack has no type of; `level` is how many sets hold `obj`."""
    encode = _ENCODERS.get(type(obj))
    if encode is None:
        if isinstance(obj, (set, frozenset)):
            return _enc_set(obj, level)
        for base, encode in _SUBCLASS_ENCODERS:
            if isinstance(obj, base):
                break
        else:
            raise TypeError('cannot serialize object of type %r' % type(obj).__qualname__)
    return encode(obj)


def _enc_set(s: set | frozenset, level: int) -> ExtType:
    if level >= MAX_DEPTH:
        raise _TooDeep()
    return ExtType(FROZENSET if isinstance(s, frozenset) else SET,
                   _pack(list(s), partial(_default, level + 1)))


_TOP_DEFAULT = partial(_default, 0)


# -- decoding ---------------------------------------------------------------------------

@lru_cache(maxsize=256)
def _fixed_zone(micros: int) -> timezone:
    return timezone(timedelta(microseconds=micros))


def _read_head(data: bytes) -> tuple[int, int, tzinfo | None]:
    """Microseconds, fold and tzinfo from a datetime or time payload."""
    micros, flags = _HEAD.unpack_from(data)
    kind = flags >> 1
    tz: tzinfo | None
    if kind == _NAIVE and len(data) == 9:
        tz = None
    elif kind == _FIXED and len(data) == 17:
        tz = _fixed_zone(_INT64.unpack_from(data, 9)[0])
    elif kind == _NAMED:
        tz = ZoneInfo(data[9:].decode())
    else:
        raise ValueError('bad zone flags %d for a %d-byte payload' % (flags, len(data)))
    return micros, flags & 1, tz


def _dec_datetime(data: bytes) -> datetime:
    micros, fold, tz = _read_head(data)
    dt = _EPOCH + timedelta(microseconds=micros)
    return dt.replace(tzinfo=tz, fold=fold) if tz is not None or fold else dt


def _dec_date(data: bytes) -> date:
    return date.fromordinal(_DAYS.unpack(data)[0] + _EPOCH_ORDINAL)


def _dec_time(data: bytes) -> time:
    micros, fold, tz = _read_head(data)
    seconds, micro = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return time(hour, minute, second, micro, tz, fold=fold)


def _dec_timedelta(data: bytes) -> timedelta:
    seconds, micros = _DELTA.unpack(data)
    return timedelta(seconds=seconds, microseconds=micros)


def _dec_decimal(data: bytes) -> Decimal:
    return Decimal(data.decode('ascii'))


def _dec_uuid(data: bytes) -> UUID:
    return UUID(bytes=data)


def _dec_items(data: bytes, level: int) -> tuple:
    """The members of a set held by `level` others."""
    if level >= MAX_DEPTH:
        raise _TooDeep()
    # An Unpacker keeps its parse stack on the heap; unpackb keeps 40 KB of it on the C
    # stack, once per level. use_list=False: set members are hashable, so arrays were tuples.
    size = len(data)
    unpacker = Unpacker(None, ext_hook=partial(_ext_hook, level + 1), raw=False,
                        strict_map_key=False, timestamp=3, use_list=False,
                        max_buffer_size=max(size, 1), max_str_len=size, max_bin_len=size,
                        max_array_len=size, max_map_len=size // 2, max_ext_len=size)
    unpacker.feed(data)
    items = unpacker.unpack()
    if type(items) is not tuple:
        raise ValueError('set payload is not an array')
    if unpacker.tell() != size:
        raise ValueError('extra bytes after a set payload')
    return items


def _dec_bigint(data: bytes) -> int:
    return int.from_bytes(data, 'big', signed=True)


_DECODERS: dict[int, Callable[[bytes], object]] = {
    DATETIME: _dec_datetime, DATE: _dec_date, TIME: _dec_time, TIMEDELTA: _dec_timedelta,
    DECIMAL: _dec_decimal, UUID_: _dec_uuid, BIGINT: _dec_bigint,
}


def _ext_hook(level: int, code: int, data: bytes) -> object:
    """msgpack's hook for ext values; `level` is how many sets hold this one."""
    decode = _DECODERS.get(code)
    if decode is not None:
        return decode(data)
    if code == SET:
        return set(_dec_items(data, level))
    if code == FROZENSET:
        return frozenset(_dec_items(data, level))
    raise ValueError('unknown ext type code %d' % code)


_TOP_HOOK = partial(_ext_hook, 0)
