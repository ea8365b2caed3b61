"""The hub takes an instance's `ready` flag (fannode.runtime.dependencies), and only a
true or false there."""
from __future__ import annotations

import pytest

from fannode.exceptions import BadArguments
from fannode.hub.schema import check_body
from fannode.hub.server import Hub

INSTANCE = {'id': 'i1', 'endpoint': 'tcp://127.0.0.1:9', 'services': ['Orders']}


def test_ready_is_taken_as_a_bool():
    for ready in (True, False):
        body = check_body('hub.register', Hub.rpc_register, {'instance': dict(INSTANCE, ready=ready)})
        assert body['instance']['ready'] is ready


def test_anything_else_is_refused_naming_the_field():
    with pytest.raises(BadArguments) as e:
        check_body('hub.register', Hub.rpc_register, {'instance': dict(INSTANCE, ready='yes')})
    assert str(e.value) == "hub.register: instance.ready: expected true or false, got str 'yes'"


def test_a_ready_instance_registers_without_the_field_so_an_older_hub_takes_it():
    from fannode.core.instance import InstanceInfo
    info = InstanceInfo('i1', 'tcp://127.0.0.1:1', ['Echo'])
    assert 'ready' not in info.registration() and InstanceInfo.from_dict(info.registration()).ready is True
    info.ready = False
    assert info.registration()['ready'] is False
