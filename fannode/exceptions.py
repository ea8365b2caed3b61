"""Every error fannode raises on purpose.

    FannodeError                 base; str(err) is one line fit to show a user
     ├─ ConfigError              a config file or key is wrong (names file, line, key)
     ├─ UsageError               bad input on the command line (bad JSON, bad name)
     ├─ RegistryUnavailable      nothing answers at the registry URL
     └─ RpcError                 a call did not produce a normal reply
         ├─ Timeout              no reply before the deadline
         │   └─ DeadlineExceeded the call's deadline (its own, or the one it was made
         │                       under) passed: not answered in time, or not run at all
         ├─ CircuitOpen          not sent: the breaker for that service or instance is
         │                       open after repeated failures
         ├─ ConnectionLost       the instance went away while handling the call
         ├─ DiscoveryFailed      the registry could not say where the service is (also
         │                       a RegistryUnavailable); nothing was sent
         ├─ BadReply             the reply was not a fannode reply (a broken or hostile server)
         ├─ Nack                 refused at once, never run
         │   ├─ UnknownService   no instance offers that service
         │   │   └─ UnknownVersion   none of the version asked for (names those there are)
         │   ├─ UnknownMethod    the service has no such method
         │   ├─ BadArguments     the arguments do not fit the method's signature
         │   ├─ Unavailable      the instance is stopping
         │   └─ BadRequest       the request was not understood (a bad field, a limit)
         └─ RemoteError          the remote method raised; one subclass per remote type,
                                 made on demand: ``except RemoteError.KeyError:``

A remote exception never arrives as the remote type itself: the caller may not even be
able to import it. ``RemoteError.KeyError`` is a subclass of ``RemoteError`` named after it,
carrying the remote message and traceback text. One that a service lets through from a
call of its own reaches its callers as ``RemoteError.KeyError`` again, however many hops.
"""
from __future__ import annotations


class FannodeError(Exception):
    """Base of fannode's own errors."""


class ConfigError(FannodeError):
    """A config file is missing, unreadable, or has a wrong key or value."""


class UsageError(FannodeError):
    """The user gave a command bad input."""


class RegistryUnavailable(FannodeError):
    """Nothing answered at the registry URL."""


class RpcError(FannodeError):
    """A call did not produce a normal reply."""


class Timeout(RpcError):
    """No reply arrived before the deadline."""


class DeadlineExceeded(Timeout):
    """The deadline passed: the caller's own, or that of the request it was made under
    (a nested call gets only what is left). A server that receives a request whose deadline
    has passed answers this without running it."""

    code = 'deadline_exceeded'


class CircuitOpen(RpcError):
    """Not sent: the circuit breaker for that service (or every instance of it) is open
    after repeated failures, and no healthy instance is left to try. Never run."""


class ConnectionLost(RpcError):
    """The instance handling the call went away before replying."""


class DiscoveryFailed(RpcError, RegistryUnavailable):
    """The registry did not answer the lookup a call needed (hub down, ZooKeeper gone)."""


class BadReply(RpcError):
    """The reply to a call could not be read: not a fannode frame, or a body of the
    wrong shape. Whether the method ran is unknown."""


class Nack(RpcError):
    """The call was refused at once and never run."""

    code = 'nack'
    # True on a refusal this process got as a caller. A server that meets one while
    # running a method reports a failure of that method, not a refusal of its own
    # (a caller would take a refusal to mean the method never ran, and retry it).
    received = False

    def as_received(self) -> 'Nack':
        self.received = True
        return self


class UnknownService(Nack):
    code = 'unknown_service'


class UnknownVersion(UnknownService):
    """Instances of the service run, but none of the version the call asked for
    (`proxy('Greeting', version='^2')`); the message names the versions there are."""

    code = 'unknown_version'


class UnknownMethod(Nack):
    code = 'unknown_method'


class BadArguments(Nack):
    code = 'bad_arguments'


class Unavailable(Nack):
    code = 'unavailable'


class BadRequest(Nack):
    code = 'bad_request'


NACK_CODES = {cls.code: cls for cls in (Nack, UnknownService, UnknownVersion, UnknownMethod, BadArguments,
                                        Unavailable, BadRequest)}


class _RemoteErrorType(type):
    """Makes ``RemoteError.SomeName`` a cached subclass named after the remote type."""

    _subclasses: dict[str, type] = {}

    def __getattr__(cls, name: str) -> type:
        if name.startswith('_') or cls is not RemoteError:
            raise AttributeError(name)
        return cls.for_type(name)

    def for_type(cls, name: str, limit: int | None = None) -> type[RemoteError]:
        """The class for remote type `name`; plain RemoteError when `limit` classes are
        made already (a hostile server must not make us make one per reply)."""
        sub = _RemoteErrorType._subclasses.get(name)
        if sub is None:
            if limit is not None and len(_RemoteErrorType._subclasses) >= limit:
                return RemoteError
            sub = _RemoteErrorType(name, (RemoteError,), {'__module__': 'fannode.exceptions.RemoteError'})
            sub.__qualname__ = 'RemoteError.' + name
            _RemoteErrorType._subclasses[name] = sub
        return sub


class RemoteError(RpcError, metaclass=_RemoteErrorType):
    """The remote method raised. ``type(err).__name__`` is the remote type's name."""

    def __init__(self, message: str = '', remote_type: str = '', remote_traceback: str = '',
                 subject: str = ''):
        super().__init__(message)
        self.message = message
        self.remote_type = remote_type or type(self).__name__
        self.remote_traceback = remote_traceback
        self.subject = subject

    def __str__(self) -> str:
        who = '%s raised ' % self.subject if self.subject else ''
        return '%s%s: %s' % (who, self.remote_type, self.message)

    @classmethod
    def from_reply(cls, body: dict, subject: str = '', limit: int | None = None) -> 'RemoteError':
        """The exception an ERROR body stands for. `type` names the remote class
        (`KeyError`, `myapp.errors.OutOfStock`, `RemoteError.KeyError` from a service that
        let a remote error through); the class raised is named after its last part."""
        remote_type = body.get('type') or 'Exception'
        short = remote_type.rsplit('.', 1)[-1]
        return RemoteError.for_type(short, limit)(body.get('message', ''), remote_type,
                                                  body.get('traceback', ''), subject)
