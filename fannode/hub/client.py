"""A link to the hub: requests with short timeouts, pushed notifications, and the
background loops (heartbeats, syncs) of whoever owns it, with outages logged once."""
from __future__ import annotations

import itertools
import logging
from typing import Any, Callable
from urllib.parse import urlsplit

import gevent
import zmq.green as zmq

from fannode.exceptions import Nack, RegistryUnavailable, RemoteError, RpcError, UsageError
from fannode.core import trace, wire
from fannode.zmqrpc.connection import Call, Connection, encode_request

log = logging.getLogger(__name__)

DEFAULT_PORT = 4010
LOG_SERVICE = 'fannode.logs'  # what a log-only hub registers as in discovery
CONNECT_TIMEOUT = 0.5   # how long a first contact may take before we call the hub absent
CALL_TIMEOUT = 2.0
_ids = itertools.count(1)


def hub_endpoint(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != 'hub':
        raise UsageError("not a hub URL: %r" % url)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise UsageError("bad port in hub URL %r" % url) from None
    return 'tcp://%s:%d' % (parts.hostname or '127.0.0.1', port)


class HubRefused(RegistryUnavailable):
    """The hub answered, and said no. `answer` is what it said: a Nack (BadArguments or
    UnknownMethod: the request itself is wrong; Unavailable: full or stopping, try later)
    or a RemoteError (the hub failed on it). A RegistryUnavailable still, so loops that
    wait out an absent hub wait this out too."""

    def __init__(self, message: str, answer: RpcError):
        super().__init__(message)
        self.answer = answer


class HubLink:
    def __init__(self, url: str, on_notify: Callable[[wire.Message], None] | None = None,
                 context: zmq.Context | None = None):
        self.url = url
        self.endpoint = hub_endpoint(url)
        self.conn = Connection(context or zmq.Context.instance(), self.endpoint, on_notify)
        self.loops: list[gevent.Greenlet] = []
        self.outage = False
        self.closed = False

    def call(self, method: str, timeout: float = CALL_TIMEOUT, **body: Any) -> Any:
        if self.closed:
            raise RegistryUnavailable('the link to the hub at %s was closed' % self.url)
        if not self.conn.wait_connected(CONNECT_TIMEOUT):
            raise RegistryUnavailable(
                'cannot reach the hub at %s: start one with `fannode hub` or `fannode up`, '
                'or point --registry / $FANNODE_REGISTRY at a running one' % self.url)
        call = Call('hub.' + method, next(_ids), timeout)
        msg = wire.Message(wire.REQ, call.id, call.subject, body, deadline_ms=int(timeout * 1000))
        if not self.conn.send(encode_request(msg), call):
            raise RegistryUnavailable('lost the hub at %s' % self.url)
        try:
            return call.get()
        except Nack as e:  # the hub's own line names the verb and the argument at fault
            raise HubRefused('the hub at %s refused it: %s' % (self.url, e), e) from None
        except RemoteError as e:
            raise HubRefused('the hub at %s failed on it: %s' % (self.url, e), e) from None
        except RpcError as e:
            raise RegistryUnavailable('the hub at %s did not answer: %s' % (self.url, e)) from None

    def guarded(self, work: Callable[[], Any]) -> bool:
        """Run a background exchange (a heartbeat, a sync, a send); log an outage once and
        its end once. False when it did not get through; never raises, so the loop that
        calls it (the one that keeps an instance registered) goes on whatever happens.
        Nothing once the link is closed: a loop woken before its kill lands says nothing."""
        if self.closed:
            return False
        try:
            work()
        except Exception as e:
            if self.closed:  # closed while it waited
                return False
            if not self.outage and isinstance(e, RegistryUnavailable):
                log.warning('%s; retrying', e)
            elif not self.outage:  # a reply of a shape we did not expect, or a bug of ours
                log.exception('talking to the hub at %s failed; retrying', self.url)
            self.outage = True
            return False
        if self.outage:
            log.info('the hub at %s is back', self.url)
        self.outage = False
        return True

    def start(self, loop: Callable[[], None]) -> None:
        """Run `loop` in the background once, however often this is called."""
        if not any(g.name == loop.__name__ for g in self.loops):
            greenlet = trace.background(loop)
            greenlet.name = loop.__name__
            self.loops.append(greenlet)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        gevent.killall(self.loops, block=False)
        self.conn.close()
