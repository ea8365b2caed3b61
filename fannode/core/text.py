"""Text that others wrote (a child process, a client's request path, a log record from
the network), made safe to show in a terminal: it must never drive it."""
from __future__ import annotations

import re
from typing import Any

# Control characters others wrote are shown, never sent to the terminal: ESC
# starts sequences that retitle the window, clear the screen or write to the clipboard, CR
# and BS overwrite the prefix, C1 codes (U+0080..9F) are ESC on some terminals, and the
# bidirectional overrides reorder what is shown. Tab is left alone.
_CONTROLS = [c for c in range(0x20) if c != 0x09] + [0x7f] + list(range(0x80, 0xa0)) + \
    [0x061c, 0x200e, 0x200f] + list(range(0x202a, 0x202f)) + list(range(0x2066, 0x206a))
VISIBLE = {c: ('\\x%02x' % c if c < 0x100 else '\\u%04x' % c) for c in _CONTROLS}


# Select Graphic Rendition: colours and bold, all a coloured dev server needs. They cannot
# move the cursor, clear the screen or set the title, so they pass; any other sequence does not.
SGR = re.compile(r'(\x1b\[[0-9;]{0,32}m)')


def visible(text: str) -> str:
    """`text` with every control character written out (ESC as \\x1b), fit for a terminal;
    only colour sequences (SGR) pass as they are."""
    if '\x1b[' not in text:
        return text.translate(VISIBLE)
    parts = SGR.split(text)  # odd items are the colour sequences
    shown = ''.join(p if i % 2 else p.translate(VISIBLE) for i, p in enumerate(parts))
    return shown + '\x1b[0m' if len(parts) > 1 else shown  # a colour left on ends with its line


def short(value: Any, limit: int = 60, quote: bool = True) -> str:
    """repr(value) (str(value) without `quote`) cut to `limit` characters, for a message
    quoting what it was given: never a megabyte of it, never control characters, never an
    exception (an int past 4,300 digits has no repr, and a hostile object's may raise)."""
    if type(value) is int and value.bit_length() > 64:
        return 'an integer of %d bits' % value.bit_length()
    try:
        text = repr(value) if quote else str(value)
    except Exception:  # noqa: BLE001 - whatever it raises, the message still goes out
        text = '<a %s>' % type(value).__name__
    text = text.translate(VISIBLE)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def redacted(url: str) -> str:
    """A URL as it may be printed: no password."""
    from urllib.parse import urlsplit
    try:
        password = urlsplit(url).password
    except ValueError:
        return url
    return url if password is None else url.replace(':%s@' % password, ':***@', 1)
