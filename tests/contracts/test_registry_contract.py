"""What every discovery backend promises (fannode/discovery/base.py), checked against each:
local://, hub:// and zookeeper://. `registry.make()` opens one more client of the test's own
namespace; one client registers, another looks up, as instances and callers do."""
from __future__ import annotations

import dataclasses
import os
import time
import uuid

import pytest

from fannode.discovery.base import InstanceInfo
from fannode.testing import wait_until

WAIT = 10.0  # a deadline only: every wait returns as soon as its condition holds


def instance(*services: str, **fields) -> InstanceInfo:
    fields.setdefault('endpoint', 'tcp://127.0.0.1:%d' % (20000 + len(services)))
    return InstanceInfo(id=uuid.uuid4().hex, services=list(services or ('Greeting',)), pid=os.getpid(),
                        host='box', version='1.2', started=time.time(), **fields)


def ids(instances) -> list[str]:
    return sorted(i.id for i in instances)


def test_an_instance_registered_by_one_client_is_found_by_another(registry):
    announcer, caller = registry.make(), registry.make()
    assert caller.lookup('Greeting') == []
    greeting = instance('Greeting', meta={'zone': 'a', 'weights': [1, 2]})
    announcer.register(greeting)
    found = wait_until(lambda: caller.lookup('Greeting'), WAIT, 'the instance through the watch')
    assert found == [greeting]  # every field, as registered
    assert caller.lookup('Other') == []


def test_a_record_comes_back_as_the_wire_gives_it(registry):
    """Through msgpack (the hub) or JSON (ZooKeeper) a tuple comes back a list, and no
    caller shares an object with the one that registered."""
    announcer, caller = registry.make(), registry.make()
    greeting = instance('Greeting', meta={'zones': ('a', 'b')})
    announcer.register(greeting)
    found, = wait_until(lambda: caller.lookup('Greeting'), WAIT, 'the instance')
    assert found.meta == {'zones': ['a', 'b']} and type(found.meta['zones']) is list
    own, = wait_until(lambda: announcer.lookup('Greeting'), WAIT, 'the instance, for its own registry')
    assert own is not greeting and own.meta == {'zones': ['a', 'b']}
    greeting.meta['zones'] = 'changed after registering'
    assert caller.lookup('Greeting')[0].meta == {'zones': ['a', 'b']}


def test_services_lists_every_service_of_every_instance_now(registry):
    announcer, caller = registry.make(), registry.make()
    assert caller.services() == {}
    both = instance('Greeting', 'Listen')
    web = instance('Web')
    announcer.register(both)
    announcer.register(web)
    listed = caller.services()  # asked of the backend now: no waiting
    assert sorted(listed) == ['Greeting', 'Listen', 'Web']
    assert listed['Greeting'] == [both] and listed['Listen'] == [both] and listed['Web'] == [web]
    announcer.unregister(both)
    assert caller.services() == {'Web': [web]}  # a service with no instance left is not listed


def test_instances_of_one_service_from_several_clients_are_all_found(registry):
    first, second, caller = registry.make(), registry.make(), registry.make()
    one, two = instance('Greeting'), instance('Greeting', endpoint='tcp://127.0.0.1:20099')
    first.register(one)
    second.register(two)
    wait_until(lambda: ids(caller.lookup('Greeting')) == ids([one, two]), WAIT, 'both instances')
    second.unregister(two)
    wait_until(lambda: caller.lookup('Greeting') == [one], WAIT, 'the other one to stay alone')


def test_registering_again_updates_the_record_in_place(registry):
    announcer, caller = registry.make(), registry.make()
    greeting = instance('Greeting')
    announcer.register(greeting)
    wait_until(lambda: caller.lookup('Greeting') == [greeting], WAIT, 'the first record')
    moved = dataclasses.replace(greeting, endpoint='tcp://127.0.0.1:20777', meta={'moved': True})
    announcer.register(moved)
    wait_until(lambda: caller.lookup('Greeting') == [moved], WAIT, 'the new record, and only it')


def test_registering_again_with_other_services_withdraws_it_from_the_old_ones(registry):
    announcer, caller = registry.make(), registry.make()
    both = instance('Greeting', 'Listen')
    announcer.register(both)
    wait_until(lambda: caller.lookup('Greeting') == caller.lookup('Listen') == [both], WAIT, 'both services')
    moved = dataclasses.replace(both, services=['Listen', 'Web'])
    announcer.register(moved)
    assert caller.services() == {'Listen': [moved], 'Web': [moved]}  # asked now: Greeting is gone
    wait_until(lambda: caller.lookup('Greeting') == [] and caller.lookup('Listen') == [moved], WAIT,
               'the lookups to follow')
    announcer.unregister(moved)
    assert caller.services() == {}


def test_unregister_withdraws_at_once_and_watchers_hear_of_it(registry):
    announcer, caller = registry.make(), registry.make()
    greeting = instance('Greeting')
    announcer.register(greeting)
    wait_until(lambda: caller.lookup('Greeting') == [greeting], WAIT, 'the instance')
    announcer.unregister(greeting)
    assert caller.services() == {}
    wait_until(lambda: caller.lookup('Greeting') == [], WAIT, 'the lookup cache to hear of it')
    announcer.unregister(greeting)  # twice is harmless


def test_listeners_hear_what_a_lookup_found_then_every_change(registry):
    announcer, caller = registry.make(), registry.make()
    first = instance('Greeting')
    announcer.register(first)
    heard = []
    caller.add_listener(lambda service, instances: heard.append((service, ids(instances))))
    assert caller.lookup('Greeting') == [first]
    wait_until(lambda: ('Greeting', [first.id]) in heard, WAIT, 'what the lookup found, told')
    second = instance('Greeting')
    announcer.register(second)
    wait_until(lambda: heard[-1] == ('Greeting', ids([first, second])), WAIT, 'the second instance, told')
    announcer.unregister(first)
    wait_until(lambda: heard[-1] == ('Greeting', [second.id]), WAIT, 'the first one leaving, told')
    assert caller.lookup('Greeting') == [second]  # the cache is current: told, not polled


def test_listeners_hear_only_of_services_looked_up(registry):
    announcer, caller = registry.make(), registry.make()
    heard = []
    caller.add_listener(lambda service, instances: heard.append((service, ids(instances))))
    caller.lookup('Watched')
    unwatched, watched = instance('Unwatched'), instance('Watched')
    announcer.register(unwatched)
    announcer.register(watched)  # after the other: once it is heard, the other would have been
    wait_until(lambda: ('Watched', [watched.id]) in heard, WAIT, 'the watched service, told')
    assert {service for service, _ in heard} == {'Watched'}


def test_an_instance_goes_when_the_client_that_registered_it_does(registry):
    """No unregister: the process died. The hub stops hearing heartbeats, ZooKeeper's
    session ends; either way the instance is gone for everyone else."""
    announcer, staying, caller = registry.make(), registry.make(), registry.make()
    gone, kept = instance('Greeting'), instance('Greeting')
    announcer.register(gone)
    staying.register(kept)
    wait_until(lambda: ids(caller.lookup('Greeting')) == ids([gone, kept]), WAIT, 'both instances')
    heard = []
    caller.add_listener(lambda service, instances: heard.append(ids(instances)))
    registry.close(announcer)
    wait_until(lambda: caller.lookup('Greeting') == [kept], WAIT, 'the instance of the gone client to go')
    assert heard[-1] == [kept.id] and caller.services() == {'Greeting': [kept]}


def test_a_record_that_cannot_be_sent_is_refused_at_register(registry):
    announcer = registry.make()
    with pytest.raises(TypeError):
        announcer.register(instance('Greeting', meta={'what': object()}))
    assert announcer.services() == {}
