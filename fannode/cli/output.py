"""Human output through rich, machine output as JSON."""
from __future__ import annotations

import base64
import datetime
import decimal
import json
import sys
import uuid
from typing import Any

from rich.console import Console

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def error(message: str) -> None:
    err.print('[bold red]error:[/] ' + _escape(message))


def to_json(value: Any) -> str:
    return json.dumps(value, default=_jsonable, ensure_ascii=False, sort_keys=False)


def print_json(value: Any) -> None:
    sys.stdout.write(to_json(value) + '\n')
    sys.stdout.flush()


def print_value(value: Any) -> None:
    """A reply for people: text as is, anything else as indented JSON."""
    if isinstance(value, str):
        sys.stdout.write(value + '\n')
    else:
        sys.stdout.write(json.dumps(value, default=_jsonable, ensure_ascii=False, indent=2) + '\n')
    sys.stdout.flush()


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID, datetime.timedelta)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode('ascii')
    raise TypeError('cannot show a %s as JSON' % type(value).__name__)


def _escape(text: str) -> str:
    from rich.markup import escape
    return escape(text)
