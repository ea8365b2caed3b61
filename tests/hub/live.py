"""A real hub in this process, on a free port, and a client that sends it any body at all
(HubLink only sends maps of keyword arguments) and sees what a user would: the reply, or
the refusal with its code and message."""
from __future__ import annotations

import itertools
from typing import Any

from conftest import free_port
from fannode.core import wire
from fannode.exceptions import Nack
from fannode.hub.client import HubLink
from fannode.hub.server import Hub
from fannode.testing import wait_until
from fannode.zmqrpc.connection import Call

_ids = itertools.count(1)


class LiveHub:
    def __init__(self, journal: str | None = None, logs_only: bool = False):
        self.port = free_port()
        self.url = 'hub://127.0.0.1:%d' % self.port
        self.hub = Hub(journal=journal, **({'logs_only': True} if logs_only else {}))
        self.hub.bind('127.0.0.1', self.port)
        self.hub.start()
        self.links: list[HubLink] = []
        self.link = self.connect()

    def connect(self, on_notify: Any = None) -> HubLink:
        link = HubLink(self.url, on_notify)
        assert link.conn.wait_connected(5), 'the hub did not answer'
        self.links.append(link)
        return link

    def ask(self, method: str, body: Any, link: HubLink | None = None, timeout: float = 5.0) -> Any:
        """The reply to `hub.<method>` with `body` as is, or the Nack it was refused with."""
        link = link or self.link
        call = Call('hub.' + method, next(_ids), timeout)
        msg = wire.Message(wire.REQ, call.id, call.subject, body, deadline_ms=int(timeout * 1000))
        assert link.conn.send(msg.encode(), call)
        try:
            return call.get()
        except Nack as e:
            return e

    def refused(self, method: str, body: Any, code: str = 'bad_arguments') -> str:
        """The one-line message of the refusal `hub.<method>` gets with `body`."""
        answer = self.ask(method, body)
        assert isinstance(answer, Nack), 'hub.%s took %r and answered %r' % (method, body, answer)
        assert answer.code == code, '%s: %s' % (answer.code, answer)
        message = str(answer)
        assert '\n' not in message and len(message) < 400, message
        return message

    def close(self) -> None:
        for link in self.links:
            link.close()
        self.hub.stop()


def instance(id: str, services: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    return dict({'id': id, 'endpoint': 'tcp://127.0.0.1:9', 'services': ['Echo'] if services is None else services,
                 'pid': 1, 'host': 'h', 'version': '', 'started': 1.0, 'meta': {}}, **fields)


def event(type: str = 'probe.done', **body: Any) -> dict[str, Any]:
    return {'event': {'type': type, 'body': body, 'headers': {'id': 'e1', 'source': 'test'}}, 'delay': 0.0}


def wait_gone(live: LiveHub, instance_id: str, timeout: float = 3.0) -> None:
    """The expiry loop still runs: an instance that stopped heartbeating goes."""
    wait_until(lambda: all(i['id'] != instance_id for found in live.ask('services', {}).values() for i in found),
               timeout, 'the expiry loop to drop %s' % instance_id)
