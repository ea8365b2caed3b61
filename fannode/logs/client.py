"""Following and querying the cluster's log hubs (gevent): what `tail`, `trace` and
`top` use.

On a hub cluster the hub is the log hub. On a ZooKeeper cluster every `fannode up` node
runs one and registers it in discovery as service `fannode.logs`.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import gevent

from fannode.core import trace, wire
from fannode.exceptions import FannodeError, RegistryUnavailable
from fannode.hub.client import LOG_SERVICE, HubLink
from fannode.logs.records import Record, by_time, unpack_all

log = logging.getLogger(__name__)

KEEPALIVE = 5.0  # well inside the hub's FOLLOWER_TTL


def log_hub_urls(registry_url: str) -> list[str]:
    """hub:// URLs of every log hub of the cluster."""
    if registry_url.startswith('hub://'):
        return [registry_url]
    from fannode.discovery import get_registry
    registry = get_registry(registry_url)
    try:
        return ['hub://' + info.endpoint.split('://', 1)[1] for info in registry.lookup(LOG_SERVICE)]
    finally:
        registry.close()


class Following:
    """Records matching a filter from one log hub, handed to `on_record` in order; a
    message that went missing on the way is reported as a record saying so."""

    def __init__(self, url: str, on_record: Callable[[Record], None], query: dict[str, Any]):
        self.url = url
        self.on_record = on_record
        self.query = query
        self.expected = 1
        self.link = HubLink(url, self._on_notify)
        self.link.start(self._keep_alive)

    def _on_notify(self, msg: wire.Message) -> None:
        if msg.subject != 'logs':
            return
        n = msg.body.get('n', 0)
        if n > self.expected:
            self.on_record(missed(self.url, n - self.expected))
        self.expected = n + 1
        self._hand(msg.body.get('records', ()))

    def _follow(self, history: int) -> None:
        answer = self.link.call('log_follow', history=history, **self.query)
        self.expected = answer.get('n', 0) + 1
        # a request's line is stamped when it ended, its span when it began: in time again,
        # and no more than asked for
        kept = by_time(unpack_all(answer.get('records', ()), bool(self.query.get('spans'))))
        for record in kept[-history:] if history else ():
            self.on_record(record)

    def _hand(self, records: Any) -> None:
        for record in unpack_all(records, bool(self.query.get('spans'))):
            self.on_record(record)

    def _keep_alive(self) -> None:
        history = self.query.pop('history', 200)
        following = False
        while True:
            if following:
                answer: list[bool] = []
                following = self.link.guarded(lambda: answer.append(self.link.call('log_alive'))) \
                    and answer[0]
            if not following:  # first, after an outage, or forgotten by a restarted hub
                following = self.link.guarded(lambda: self._follow(history))
                if following:
                    history = 0
            gevent.sleep(KEEPALIVE if following else 1.0)

    def close(self) -> None:
        try:
            self.link.call('log_stop', timeout=0.5)
        except FannodeError:
            pass
        self.link.close()


def missed(url: str, count: int) -> Record:
    return {'kind': 'log', 'level': 'WARNING', 'logger': 'fannode.logs', 'service': 'tail',
            'instance': '', 'pid': 0, 'host': '', 'ts': 0, 'trace': '', 'span': '',
            'msg': '%d message(s) of records from %s went missing (this follower was too slow)'
                   % (count, url)}


class LogClient:
    def __init__(self, registry_url: str):
        self.registry_url = registry_url

    def urls(self) -> list[str]:
        urls = log_hub_urls(self.registry_url)
        if not urls:
            raise FannodeError('no log hub found in %s (is a `fannode up` node running?)' % self.registry_url)
        return urls

    def follow(self, on_record: Callable[[Record], None], services: list[str] | tuple = (),
               level: str = '', trace: str = '', spans: bool = False, history: int = 200) -> 'Follow':
        """Follow every log hub there is, and each one that appears later (a node started)."""
        query = {'services': list(services), 'level': level, 'trace': trace, 'spans': spans,
                 'history': history}
        return Follow(self.registry_url, on_record, query)

    def trace(self, trace_id: str, timeout: float = 2.0) -> list[Record]:
        """Every record of one trace from every log hub, in time order."""
        return self._ask_each(lambda link: link.call('trace', timeout=timeout, trace_id=trace_id), tolerate=True,
                              spans=True)

    def recent(self, services: list[str] | tuple = (), level: str = '', trace: str = '',
               spans: bool = False, history: int = 200) -> list[Record]:
        """The last `history` matching records each log hub kept, in time order."""
        def ask(link: HubLink) -> list[Record]:
            answer = link.call('log_follow', services=list(services), level=level, trace=trace, spans=spans,
                               history=history)
            link.call('log_stop')
            return answer['records']
        records = self._ask_each(ask, tolerate=False, spans=spans)
        return records[-history:] if history > 0 else []  # a request's span and line count as two

    def _ask_each(self, ask: Callable[[HubLink], list[Record]], tolerate: bool, spans: bool) -> list[Record]:
        """What `ask` gets from each log hub, in time order (a span that carries its line
        unpacked: `spans` or not); with `tolerate`, a hub that does not answer is a warning
        rather than the error."""
        records: list[Record] = []
        for url in self.urls():
            link = HubLink(url)
            try:
                records += unpack_all(ask(link), spans)
            except RegistryUnavailable as e:
                if not tolerate:
                    raise
                log.warning('%s', e)
            finally:
                link.close()
        return by_time(records)


class Follow:
    LOOK_EVERY = 2.0  # seconds between looks for new log hubs in discovery

    def __init__(self, registry_url: str, on_record: Callable[[Record], None], query: dict[str, Any]):
        self.on_record = on_record
        self.query = query
        self.followings: dict[str, Following] = {}
        if registry_url.startswith('hub://'):
            self._add([registry_url])
            self._looker = None
        else:
            self._looker = trace.background(self._look, registry_url)

    def _add(self, urls: list[str]) -> None:
        for url in urls:
            if url not in self.followings:
                self.followings[url] = Following(url, self.on_record, dict(self.query))

    def _look(self, registry_url: str) -> None:
        from fannode.discovery import get_registry
        registry = get_registry(registry_url)
        try:
            while True:
                try:
                    self._add(['hub://' + i.endpoint.split('://', 1)[1] for i in registry.lookup(LOG_SERVICE)])
                except FannodeError as e:
                    log.warning('%s', e)
                gevent.sleep(self.LOOK_EVERY)
        finally:
            registry.close()

    def stop(self) -> None:
        if self._looker is not None:
            self._looker.kill()
        for following in self.followings.values():
            following.close()
