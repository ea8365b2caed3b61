"""Every discovery backend carries an instance's `ready` flag (fannode.runtime.dependencies
registers again as the flag changes), and its listeners hear each change."""
from __future__ import annotations

import dataclasses

from fannode.testing import wait_until
from test_registry_contract import WAIT, instance


def test_ready_travels_and_registering_again_flips_it_for_watchers(registry):
    announcer, caller = registry.make(), registry.make()
    heard = []
    caller.add_listener(lambda service, instances: heard.append([i.ready for i in instances]))
    waiting = instance('Orders', meta={'missing': ['Store']}, ready=False)
    announcer.register(waiting)
    found, = wait_until(lambda: caller.lookup('Orders'), WAIT, 'the not-ready instance')
    assert found.ready is False and found.meta == {'missing': ['Store']}
    announcer.register(dataclasses.replace(waiting, ready=True, meta={'missing': []}))
    wait_until(lambda: [i.ready for i in caller.lookup('Orders')] == [True], WAIT, 'the ready record')
    wait_until(lambda: heard and heard[-1] == [True], WAIT, 'the listener to hear it')
    assert [False] in heard
    assert instance('Orders').ready is True  # what an instance that declares nothing registers
