"""The leave grace (FANNODE_LEAVE_GRACE, set by `fannode up`) is part of the stop timeout,
never more than half of it: running requests keep the rest to finish."""
from __future__ import annotations

from unittest import mock

import pytest

from fannode.runtime import container as module
from fannode.runtime.container import ServiceContainer


@pytest.mark.parametrize('grace, timeout, slept, left', [
    ('0.5', 5.0, 0.5, 4.5),     # the node's default: all of it
    ('30', 4.0, 2.0, 2.0),      # capped at half the timeout
    ('', 5.0, 0.0, 5.0),        # not under `fannode up`
])
def test_the_grace_comes_out_of_the_stop_timeout(monkeypatch, grace, timeout, slept, left):
    monkeypatch.setenv('FANNODE_LEAVE_GRACE', grace)
    sleeps = []
    monkeypatch.setattr(module.time, 'sleep', sleeps.append)
    fake = mock.MagicMock(state='running', subscriptions=[], interfaces={}, backdoor=None, events=None,
                          _shared_config=None)
    web = mock.MagicMock()
    fake.transports = [mock.MagicMock(), web]
    fake.rpc.stop.return_value = True
    ServiceContainer.stop(fake, timeout)
    assert sleeps == [slept]
    web.stop.assert_called_once_with(left)
    fake.rpc.stop.assert_called_once_with(left)
    assert fake.state == 'stopped'
