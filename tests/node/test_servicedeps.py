"""`fannode up` orders blocks by the hard dependencies their service configs declare
(read statically: the node never imports service code)."""
from __future__ import annotations

import textwrap

import pytest

from fannode.exceptions import ConfigError
from fannode.node.changes import diff
from fannode.node.servicedeps import config_arg, describe, read
from fannode.node.topology import load


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def service(tmp_path, name, interfaces):
    """conf/NAME.yml serving `interfaces` ({Interface: dependencies or None})."""
    lines = ['interfaces:']
    for iface, deps in interfaces.items():
        lines += ['  %s:' % iface, '    class: %s:%s' % (iface.lower(), iface)]
        if deps is not None:
            lines.append('    dependencies: %s' % deps)
    return write(tmp_path / 'conf' / ('%s.yml' % name), '\n'.join(lines) + '\n')


def node_yml(tmp_path, text):
    return load(write(tmp_path / 'node.yml', text), env={})


@pytest.mark.parametrize('args, expected', [
    (('--config', 'conf/a.yml'), 'conf/a.yml'),
    (('-c', 'a.yml', '--port', '5'), 'a.yml'),
    (('--port', '5', '--config=a.yml'), 'a.yml'),
    (('-ca.yml',), 'a.yml'),
    (('--port', '5'), None),
    (('--config',), None),
])
def test_the_config_argument_of_instance(args, expected):
    assert config_arg(args) == expected


def test_read_merges_the_interfaces_and_leaves_out_what_it_serves(tmp_path):
    path = service(tmp_path, 'orders', {'Orders': '{hard: [Store, Billing], soft: [Mailer]}',
                                        'Billing': '{hard: [Store], soft: [Orders]}', 'Audit': None})
    found = read(str(path), {})
    assert found.services == ('Orders', 'Billing', 'Audit')
    assert (found.hard, found.soft) == (('Store',), ('Mailer',))


def test_a_config_that_cannot_be_read_is_left_to_the_instance(tmp_path):
    assert read(str(tmp_path / 'missing.yml'), {}) is None
    assert read(str(write(tmp_path / 'bad.yml', 'interfaces: [\n')), {}) is None
    assert read(str(write(tmp_path / 'list.yml', 'interfaces: [a]\n')), {}) is None


@pytest.mark.parametrize('deps, expected', [
    ('[Store]', r"conf/orders\.yml:4: interfaces\.Orders\.dependencies: expected a mapping like "),
    ('{hard: Store}', r"conf/orders\.yml:4: interfaces\.Orders\.dependencies\.hard: expected a list of "
                      r"service names, got 'Store'"),
    ('{hrad: [Store]}', r"conf/orders\.yml:4: interfaces\.Orders\.dependencies\.hrad: unknown key .*"
                        r"did you mean 'hard'\?"),
    ('{hard: [Store, 3]}', r"interfaces\.Orders\.dependencies\.hard\.1: expected a service name, got 3"),
])
def test_a_bad_declaration_is_one_line_naming_the_file_and_key(tmp_path, deps, expected):
    service(tmp_path, 'orders', {'Orders': deps})
    with pytest.raises(ConfigError, match=expected) as info:
        node_yml(tmp_path, 'instances:\n  orders: fannode instance --config conf/orders.yml\n')
    assert '\n' not in str(info.value)


def test_a_hard_dependency_on_another_block_orders_the_start(tmp_path):
    service(tmp_path, 'store', {'Store': None})
    service(tmp_path, 'orders', {'Orders': '{hard: [Store], soft: [Mailer]}'})
    service(tmp_path, 'mailer', {'Mailer': None})
    topo = node_yml(tmp_path, '''\
        instances:
          orders: fannode instance --config conf/orders.yml
          mailer: {command: fannode instance -c conf/mailer.yml}
          store: {command: "python -m fannode instance --config=conf/store.yml"}
          redis: redis-server
    ''')
    orders = topo.instances['orders']
    assert orders.depends_on == () and orders.implied == (('store', 'Store'),)
    assert orders.after == ('store',)
    assert topo.start_waves() == [['mailer', 'store', 'redis'], ['orders']]  # soft ones never wait
    assert describe('orders', orders.implied) == 'orders starts after store (hard dependency Store)'


def test_what_node_yml_says_comes_first_and_nothing_is_repeated(tmp_path):
    service(tmp_path, 'store', {'Store': None})
    service(tmp_path, 'orders', {'Orders': '{hard: [Store, Elsewhere]}'})
    topo = node_yml(tmp_path, '''\
        instances:
          orders: {command: fannode instance --config conf/orders.yml, depends_on: [redis, store]}
          store: {command: fannode instance --config conf/store.yml, numprocesses: 2}
          store2: {command: fannode instance --config conf/store.yml}
          redis: redis-server
    ''')
    orders = topo.instances['orders']
    # Elsewhere runs on no block here: nothing to wait for (the instance is not ready without it)
    assert orders.implied == (('store', 'Store'), ('store2', 'Store'))
    assert orders.after == ('redis', 'store', 'store2')
    assert describe('orders', (('store', 'Store'), ('db', 'Db'))) == \
        'orders starts after store, db (hard dependencies Store, Db)'


def test_paths_are_relative_to_the_block_cwd_and_use_its_env(tmp_path):
    service(tmp_path / 'svc', 'store', {'Store': None})
    write(tmp_path / 'svc' / 'conf' / 'orders.yml', '''\
        interfaces:
          Orders:
            class: orders:Orders
            dependencies: {hard: ["${NEEDS}"]}
    ''')
    topo = node_yml(tmp_path, '''\
        instances:
          orders: {command: fannode instance --config conf/orders.yml, cwd: svc, env: {NEEDS: Store}}
          store: {command: fannode instance --config conf/store.yml, cwd: svc}
    ''')
    assert topo.instances['orders'].implied == (('store', 'Store'),)


def test_a_cycle_through_service_configs_is_one_line_naming_the_blocks(tmp_path):
    service(tmp_path, 'store', {'Store': '{hard: [Orders]}'})
    service(tmp_path, 'orders', {'Orders': '{hard: [Store]}'})
    with pytest.raises(ConfigError) as info:
        node_yml(tmp_path, '''\
            instances:
              orders: fannode instance --config conf/orders.yml
              store: fannode instance --config conf/store.yml
        ''')
    assert str(info.value) == str(tmp_path) + '/' + (
        'node.yml:2: instances.orders: dependency cycle: orders → store → orders '
        '(hard dependencies in service configs: orders needs Store, store needs Orders)')

    # half in node.yml, half in a service config
    service(tmp_path, 'store', {'Store': None})
    with pytest.raises(ConfigError) as info:
        node_yml(tmp_path, '''\
            instances:
              store: {command: fannode instance --config conf/store.yml, depends_on: [orders]}
              orders: fannode instance --config conf/orders.yml
        ''')
    assert str(info.value) == str(tmp_path) + '/' + (
        'node.yml:2: instances.store.depends_on: dependency cycle: store → orders → store '
        '(hard dependencies in service configs: orders needs Store)')


def test_an_edited_service_config_is_applied_in_place_on_reload(tmp_path):
    service(tmp_path, 'store', {'Store': None})
    service(tmp_path, 'orders', {'Orders': None})
    text = '''\
        instances:
          orders: fannode instance --config conf/orders.yml
          store: fannode instance --config conf/store.yml
    '''
    before = node_yml(tmp_path, text)
    service(tmp_path, 'orders', {'Orders': '{hard: [Store]}'})
    changes = diff(before, node_yml(tmp_path, text))
    assert changes.updated == ['orders'] and not changes.restarted
    assert changes.describe() == ['orders: updated (hard dependencies changed)']


def test_an_instance_registered_as_not_ready_does_not_make_its_block_ready():
    import asyncio

    import zmq.asyncio

    from fannode.node.ready import HubProbe

    probe = HubProbe('hub://127.0.0.1:1', zmq.asyncio.Context.instance())

    async def listed():
        return [('Orders', {'pid': 10, 'ready': False, 'meta': {'missing': ['Store']}}),
                ('Orders', {'pid': 11, 'ready': True}), ('Store', {'pid': 12})]  # older: no 'ready'
    probe.listed = listed
    assert asyncio.run(probe.registered_pids()) == {11: ['Orders'], 12: ['Store']}
    # and what the others wait for, so the node can say it
    assert asyncio.run(probe.registrations())[1] == {10: ['Store']}
