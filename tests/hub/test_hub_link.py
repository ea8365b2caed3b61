"""HubLink.guarded: the background exchanges of a client (heartbeats that keep an instance
registered, syncs, sends) go on whatever one of them meets."""
from __future__ import annotations

import logging

from conftest import free_port

from fannode.exceptions import RegistryUnavailable
from fannode.hub.client import HubLink


def test_a_failing_exchange_is_reported_once_and_the_loop_is_never_stopped(caplog):
    link = HubLink('hub://127.0.0.1:%d' % free_port())
    try:
        def unexpected():
            return {'unknown': 5}['unknown'] + 'x'  # a reply of a shape nobody expected

        def away():
            raise RegistryUnavailable('cannot reach the hub')

        with caplog.at_level(logging.INFO, 'fannode.hub.client'):
            assert link.guarded(unexpected) is False  # did not raise: the loop calling it goes on
            assert link.guarded(unexpected) is False
            assert link.guarded(away) is False
            assert link.guarded(lambda: None) is True
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 2, messages  # the trouble once, its end once
        assert messages[0].startswith('talking to the hub at hub://127.0.0.1:')
        assert messages[1].endswith('is back')
    finally:
        link.close()


def test_a_registration_the_hub_refuses_fails_at_once_instead_of_waiting(caplog):
    from fannode.core.instance import InstanceInfo
    from fannode.discovery.hub import HubRegistry
    from fannode.hub.client import HubRefused
    from fannode.hub.server import Hub

    hub = Hub()
    port = free_port()
    hub.bind('127.0.0.1', port)
    hub.start()
    registry = HubRegistry('hub://127.0.0.1:%d' % port)
    try:
        bad = InstanceInfo(id='x' * 10_000, endpoint='tcp://127.0.0.1:1', services=['Echo'])
        try:
            with caplog.at_level(logging.WARNING, 'fannode.discovery.hub'):
                registry.register(bad)
        except HubRefused as e:
            assert 'hub.register: instance.id: longer than' in str(e)
        else:
            raise AssertionError('registered an instance the hub must refuse')
        assert not caplog.records  # no "waiting up to 5s": a refusal is not waited out like an absent hub
    finally:
        registry.close()
        hub.stop()


def test_a_loop_woken_after_its_link_closed_says_nothing_and_a_call_says_closed(caplog):
    """A registry closed while its sync loop's sleep had already ended: the loop ran once more
    before its kill landed, sent on the closed socket and logged a traceback (ZMQError:
    Socket operation on non-socket)."""
    import gevent
    import pytest

    from fannode.hub.server import Hub
    hub, port = Hub(), free_port()
    hub.bind('127.0.0.1', port)
    hub.start()
    link = HubLink('hub://127.0.0.1:%d' % port)
    try:
        assert link.call('ping')
        link.close()
        with caplog.at_level(logging.INFO, 'fannode.hub.client'):
            assert link.guarded(lambda: link.call('ping')) is False
        assert caplog.records == []
        with pytest.raises(RegistryUnavailable, match='the link to the hub at hub://127.0.0.1:\\d+ was closed'):
            link.call('ping')

        # closed while a call waits (here for a hub that is not there): quiet too
        other = HubLink('hub://127.0.0.1:%d' % free_port())
        waiting = gevent.spawn(other.guarded, lambda: other.call('ping', timeout=5.0))
        gevent.sleep(0.2)
        with caplog.at_level(logging.INFO, 'fannode.hub.client'):
            other.close()
            assert waiting.get(timeout=10) is False
        assert caplog.records == []
        other.close()  # twice: nothing
    finally:
        link.close()
        hub.stop()
