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
"""
from __future__ import annotations

import struct
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Callable
from uuid import UUID
from zoneinfo import ZoneInfo

from msgpack import ExtType, Packer, unpackb

__all__ = ['dumps', 'loads']

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
    """Encode `obj` as one msgpack message. TypeError if something in it has no encoding."""
    # A fresh Packer per call is what msgpack.packb does, minus packb's **kwargs re-packing,
    # which alone made the call 2x slower; no Packer is shared, so this is thread-safe
    # and re-entrant (set encoding calls back in here).
    return Packer(default=_default, use_bin_type=True, datetime=False).pack(obj)


def loads(data: bytes) -> object:
    """Decode one message made by `dumps`. ValueError if it is not one."""
    try:
        return unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False, timestamp=3)
    except Exception as e:
        # Malformed frames come from the network: one exception type for callers to catch.
        raise ValueError('cannot decode message: %s' % (str(e) or type(e).__name__)) from e


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


def _enc_set(s: set) -> ExtType:
    return ExtType(SET, dumps(list(s)))


def _enc_frozenset(s: frozenset) -> ExtType:
    return ExtType(FROZENSET, dumps(list(s)))


def _enc_bigint(n: int) -> ExtType:
    # Only reached when msgpack overflows; one spare bit for the sign.
    return ExtType(BIGINT, n.to_bytes((n.bit_length() + 8) // 8, 'big', signed=True))


# Exact types first (one dict lookup); subclasses fall back to the ordered scan.
# datetime must come before date: it is a subclass of it.
_SUBCLASS_ENCODERS: list[tuple[type, Callable[..., ExtType]]] = [
    (datetime, _enc_datetime), (date, _enc_date), (time, _enc_time),
    (timedelta, _enc_timedelta), (Decimal, _enc_decimal), (UUID, _enc_uuid),
    (set, _enc_set), (frozenset, _enc_frozenset), (int, _enc_bigint),
]
_ENCODERS = dict(_SUBCLASS_ENCODERS)


def _default(obj: object) -> ExtType:
    encode = _ENCODERS.get(type(obj))
    if encode is None:
        for base, encode in _SUBCLASS_ENCODERS:
            if isinstance(obj, base):
                break
        else:
            raise TypeError('cannot serialize object of type %r' % type(obj).__qualname__)
    return encode(obj)


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


def _dec_items(data: bytes) -> tuple:
    # use_list=False: only hashable values can be set members, so arrays were tuples.
    items = unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False,
                    timestamp=3, use_list=False)
    if type(items) is not tuple:
        raise ValueError('set payload is not an array')
    return items


def _dec_set(data: bytes) -> set:
    return set(_dec_items(data))


def _dec_frozenset(data: bytes) -> frozenset:
    return frozenset(_dec_items(data))


def _dec_bigint(data: bytes) -> int:
    return int.from_bytes(data, 'big', signed=True)


_DECODERS: dict[int, Callable[[bytes], object]] = {
    DATETIME: _dec_datetime, DATE: _dec_date, TIME: _dec_time, TIMEDELTA: _dec_timedelta,
    DECIMAL: _dec_decimal, UUID_: _dec_uuid, SET: _dec_set, FROZENSET: _dec_frozenset,
    BIGINT: _dec_bigint,
}


def _ext_hook(code: int, data: bytes) -> object:
    decode = _DECODERS.get(code)
    if decode is None:
        raise ValueError('unknown ext type code %d' % code)
    return decode(data)
