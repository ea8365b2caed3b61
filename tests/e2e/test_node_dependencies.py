"""`fannode up` orders the start by the hard dependencies service configs declare, with
no depends_on in node.yml; a cycle through them is one line. Real processes."""
from __future__ import annotations

import json
import textwrap

import pytest

from conftest import one_line_error
from test_node import Node

pytestmark = pytest.mark.e2e

SERVICES = {
    'store.py': '''
        import fannode

        class Store(fannode.Interface):
            @fannode.rpc()
            def get(self, key):
                return 'value of %s' % key
    ''',
    'orders.py': '''
        import fannode

        class Orders(fannode.Interface):
            @fannode.rpc()
            def place(self, item):
                return 'placed %s: %s' % (item, self.proxy('Store').get(key=item))
    ''',
}


def service_config(interface: str, deps: str = '') -> str:
    return 'interfaces:\n  %s:\n    class: %s:%s\n%s' % (
        interface, interface.lower(), interface, '    dependencies: %s\n' % deps if deps else '')


def project(node: Node, store_deps: str = '') -> None:
    (node.dir / 'services').mkdir()  # not node.dir itself: the node's runtime dir there is named fannode
    for name, text in SERVICES.items():
        (node.dir / 'services' / name).write_text(textwrap.dedent(text))
    (node.dir / 'conf').mkdir()
    (node.dir / 'conf' / 'store.yml').write_text(service_config('Store', store_deps))
    (node.dir / 'conf' / 'orders.yml').write_text(service_config('Orders', '{hard: [Store]}'))
    # orders comes first in the file and says nothing of store
    node.write(f'''registry: {node.hub}
env:
  PYTHONPATH: services
instances:
  orders: fannode instance --config conf/orders.yml
  store: fannode instance --config conf/store.yml
''')


def test_a_block_starts_after_the_block_its_hard_dependency_runs_on(node):
    project(node)
    check = node.cli('up', '--check')
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[1:] == ['orders starts after store (hard dependency Store)']

    node.up()
    node.wait_for('cluster ready', 60)
    out = node.output()
    assert out.index('store ready: 1/1') < out.index('orders.1 started')
    assert out.index('orders.1 started') < out.index('orders ready: 1/1')
    services = node.services()
    store, orders = services['Store'][0], services['Orders'][0]
    assert store['started'] < orders['started']
    assert orders.get('ready', True) is True  # Store was there when it registered
    placed = node.cli('request', 'Orders.place', '{"item": "book"}')
    assert placed.returncode == 0, placed.stderr
    assert 'placed book: value of book' in placed.stdout


def test_a_cycle_through_service_configs_is_one_line_naming_the_blocks(node):
    project(node, store_deps='{hard: [Orders]}')
    for args in (('up', '--check'), ('up',)):
        line = one_line_error(node.cli(*args), 2)
        assert line == ('error: node.yml:5: instances.orders: dependency cycle: orders → store → orders '
                        '(hard dependencies in service configs: orders needs Store, store needs Orders)')


def test_inspect_shows_a_missing_hard_dependency_until_it_comes(node):
    project(node)
    only_orders = node.file.read_text().replace('  store: fannode instance --config conf/store.yml\n', '')
    node.write(only_orders)
    node.up()
    node.wait_for('orders.1 registered, not ready: no ready instance of Store', 30)
    assert [i['ready'] for i in node.services()['Orders']] == [False]
    result = node.cli('inspect', 'Orders')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == 'Orders' and lines[1].startswith('  Orders.place(item)')
    assert lines[2:5] == ['dependencies', '  hard Store  missing on 1 of 1 instance (not ready)', 'instances']
    assert lines[5].endswith('  not ready  missing Store')
    shown = json.loads(node.cli('inspect', 'Orders', '--json').stdout)
    assert shown['service'] == 'Orders' and [m['name'] for m in shown['methods']] == ['place']
    assert shown['dependencies'] == {'hard': ['Store'], 'soft': [], 'missing': {'Store': 1}}
    assert [(i['ready'], i['missing']) for i in shown['instances']] == [(False, ['Store'])]
    assert 'orders ready' not in node.output()  # the node does not count it ready either

    node.write(only_orders + '  store: fannode instance --config conf/store.yml\n')
    node.wait_for('orders ready: 1/1', 30)
    lines = node.cli('inspect', 'Orders').stdout.splitlines()
    assert lines[3] == '  hard Store  ok' and lines[5].endswith('  ready')

    # Store's last instance goes: Orders registers as not ready again, and the node says so
    mark = len(node.output())
    assert node.cli('scale', 'store', '0').returncode == 0
    node.wait_for('orders.1 not ready: no ready instance of Store', 30, after=mark)
    assert node.ps()['orders']['state'] == 'starting'
    assert node.cli('scale', 'store', '1').returncode == 0
    node.wait_for('orders ready: 1/1', 30, after=mark)


def test_inspect_says_the_breakers_of_each_instance():
    from fannode.cli.inspect import describe

    def breaker(state, failures=0, retry_in=None, **endpoints):
        return {'state': state, 'failures': failures, 'retry_in': retry_in,
                'endpoints': {e: {'state': s, 'failures': 0} for e, s in endpoints.items()}}
    health = {'dependencies': {'hard': [], 'soft': ['Mailer'], 'missing': {'Mailer': 1}}, 'instances': [
        {'id': 'a' * 32, 'ready': True, 'missing': ['Mailer'],
         'breakers': {'Mailer': breaker('open', 5, 2.5, a='open'), 'Store': breaker('closed', a='open', b='closed')}},
        {'id': 'b' * 32, 'ready': True, 'missing': [], 'breakers': {'Mailer': breaker('half-open', 1)}},
        {'id': 'c' * 32, 'ready': True, 'missing': [], 'breakers': None, 'error': 'Timeout: no answer within 1s'},
    ]}
    assert describe(health) == [
        'dependencies',
        '  soft Mailer  missing on 1 of 3 instances',
        'instances',
        '  aaaaaaaa  ready      missing Mailer; breakers: Mailer open (5 failures, retry in 2.5s), '
        'Store closed, 1 of 2 endpoints open',
        '  bbbbbbbb  ready      breakers: Mailer half-open (1 failure)',
        '  cccccccc  ready      breakers unknown (Timeout: no answer within 1s)',
    ]
    # a service that declares nothing and calls nothing: nothing more than its methods
    assert describe({'dependencies': {'hard': [], 'soft': [], 'missing': {}},
                     'instances': [{'id': 'd' * 32, 'ready': True, 'missing': [], 'breakers': {}}]}) == []
