"""Human output through rich, machine output as JSON."""
from __future__ import annotations

import sys
from typing import Any

from rich.console import Console

from fannode.core.jsonable import to_json

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def error(message: str) -> None:
    err.print('[bold red]error:[/] ' + _escape(message))


def print_json(value: Any) -> None:
    sys.stdout.write(to_json(value) + '\n')
    sys.stdout.flush()


def print_value(value: Any) -> None:
    """A reply for people: text as is, anything else as indented JSON."""
    if isinstance(value, str):
        sys.stdout.write(value + '\n')
    else:
        sys.stdout.write(to_json(value, indent=2) + '\n')
    sys.stdout.flush()


def _escape(text: str) -> str:
    from rich.markup import escape
    return escape(text)
