"""Values as JSON for people and for HTTP: what msgpack carries and JSON does not
(datetimes, decimals, UUIDs, sets, bytes) as their usual text forms."""
from __future__ import annotations

import base64
import datetime
import decimal
import json
import uuid
from typing import Any


def to_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, default=jsonable, ensure_ascii=False, indent=indent)


def jsonable(value: Any) -> Any:
    """For json.dumps(default=...): the JSON form of a value JSON has no type for."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID, datetime.timedelta)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode('ascii')
    raise TypeError('cannot show a %s as JSON' % type(value).__name__)
