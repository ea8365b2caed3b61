"""What an ERROR reply says, and whether it carries the server's traceback: the setting
($FANNODE_TRACEBACKS, `rpc.tracebacks`) and its default (on a loopback address only)."""
from __future__ import annotations

import ipaddress
import os
import traceback

from fannode.exceptions import ConfigError, RemoteError


def error_body(exc: BaseException, tracebacks: bool = False) -> dict[str, str]:
    """The body of an ERROR for `exc`: its type and message, and the traceback when asked
    (it names source files and lines: for developers, not for any caller)."""
    cls = type(exc)
    if isinstance(exc, RemoteError):  # let through from a call of its own: same name each hop
        name, message = 'RemoteError.' + exc.remote_type.rsplit('.', 1)[-1], exc.message
    else:
        name = cls.__qualname__ if cls.__module__ == 'builtins' else '%s.%s' % (cls.__module__, cls.__qualname__)
        message = str(exc)
    body = {'type': name, 'message': message}
    if tracebacks:
        body['traceback'] = ''.join(traceback.format_exception(exc))
        if isinstance(exc, RemoteError) and exc.remote_traceback:
            body['traceback'] += '\n%s raised it:\n%s' % (exc.subject or 'the remote side', exc.remote_traceback)
    return body


def traceback_setting(configured: bool | None) -> bool | None:
    """$FANNODE_TRACEBACKS (1 or 0) when set, else `configured`."""
    text = os.environ.get('FANNODE_TRACEBACKS', '').strip().lower()
    if not text:
        return configured
    if text in ('1', 'true', 'yes', 'on'):
        return True
    if text in ('0', 'false', 'no', 'off'):
        return False
    raise ConfigError('$FANNODE_TRACEBACKS: expected 1 or 0, got %r' % text[:40])


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return ip == 'localhost'
