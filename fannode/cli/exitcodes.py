"""Exit codes of every command, in one table (docs/cli.md, "Errors and exit codes"), and
the error a command run with --json prints on stdout."""
from __future__ import annotations

from typing import Any

OK = 0
ERROR = 1        # the command or the call failed: a remote method raised, a refusal...
USAGE = 2        # the caller's mistake: bad flags, arguments, JSON, config; retrying cannot help
UNAVAILABLE = 3  # nobody to ask: no node for this node.yml, no instance of the service, the hub
                 # or broker unreachable; may pass on its own
TIMEOUT = 4      # no answer in time; may pass with a longer --timeout
INTERRUPTED = 130  # Ctrl-C

KINDS = {OK: 'ok', ERROR: 'error', USAGE: 'usage', UNAVAILABLE: 'unavailable', TIMEOUT: 'timeout',
         INTERRUPTED: 'interrupted'}


def for_error(exc: BaseException) -> int:
    """The exit code for an error a command raised."""
    from fannode.exceptions import (
        BadArguments, BadRequest, CircuitOpen, ConfigError, ConnectionLost, RegistryUnavailable, RemoteError,
        Timeout, Unavailable, UnknownMethod, UnknownService, UsageError,
    )
    from fannode.node.client import NotRunning
    from fannode.zmqrpc.direct import CannotConnect
    unavailable = (UnknownService, Unavailable, CircuitOpen, RegistryUnavailable, ConnectionLost, CannotConnect,
                   NotRunning)
    checks: list[tuple[tuple[type, ...], int]] = [
        ((UsageError, ConfigError, BadArguments, UnknownMethod, BadRequest), USAGE),
        (unavailable, UNAVAILABLE),
        ((Timeout,), TIMEOUT),
        ((RemoteError,), ERROR),
    ]
    for types, code in checks:
        if isinstance(exc, types):
            return code
    return ERROR


def json_error(exc: BaseException, code: int) -> dict[str, Any]:
    """What `--json` prints on stdout when the command fails (the `error:` line still goes
    to stderr): the kind of failure as the exit code says it, the exception's name, the
    message."""
    return {'error': {'type': KINDS.get(code, 'error'), 'exit': code, 'exception': type(exc).__name__,
                      'message': str(exc)}}
