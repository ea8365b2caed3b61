"""fannode.testing itself: what a failing assertion says, mocks, config, errors."""
import logging

import pytest
from werkzeug.routing import Map, Rule

import fannode
from fannode.exceptions import UnknownService
from fannode.testing import ServiceUnderTest, TestCluster, wait_until

log = logging.getLogger('shop')


class OutOfStock(Exception):
    pass


class Shop(fannode.Interface):
    def apply_config(self, config):
        super().apply_config(config)
        self.currency = config.get('currency', 'EUR')

    @fannode.rpc()
    def buy(self, sku, count=1):
        price = self.proxy('Prices').price(sku=sku)
        self.proxy('Stock').reserve(sku=sku, count=count)
        log.info('sold %d of %s', count, sku)
        self.emit('sold', {'sku': sku, 'count': count, 'total': {'amount': price * count, 'currency': self.currency}})
        return price * count

    @fannode.rpc()
    def whoami(self):
        return id(self)


class Audit(fannode.Interface):
    seen = []

    @fannode.event('sold', broadcast=True)
    def on_sold(self, event):
        if event['sku'] == 'bad':
            raise ValueError('cannot audit bad')
        Audit.seen.append(event['sku'])


class Front(fannode.WebInterface):
    url_map = Map([Rule('/buy/<sku>', endpoint='buy')])

    def buy(self, request, sku):
        return {'paid': self.proxy('Shop').buy(sku=sku)}


MOCKS = {'Prices.price': 5, 'Stock.reserve': None}


def test_mocks_answer_values_and_callables_and_calls_are_recorded(fannode_service):
    shop = fannode_service(Shop, mocks={'Prices.price': lambda sku: len(sku), 'Stock.reserve': True})
    assert shop.rpc.buy(sku='abcd', count=2) == 8
    reserve = shop.assert_rpc_called('Stock.reserve', sku='abcd')
    assert reserve.kwargs == {'sku': 'abcd', 'count': 2} and reserve.mocked
    assert [c.subject for c in shop.calls] == ['Shop.buy', 'Prices.price', 'Stock.reserve']
    shop.assert_emitted('sold', {'total': {'amount': 8}})  # partial, nested


def test_a_failing_assertion_says_what_happened_instead(fannode_service):
    shop = fannode_service(Shop, mocks=MOCKS)
    shop.rpc.buy(sku='x')
    with pytest.raises(AssertionError) as e:
        shop.assert_rpc_called('Stock.reserve', sku='y')
    assert str(e.value) == ("expected a call Stock.reserve(sku='y'); calls made: Shop.buy(sku='x'); "
                            "Prices.price(sku='x'); Stock.reserve(sku='x', count=1)")
    with pytest.raises(AssertionError) as e:
        shop.assert_emitted('sold', {'count': 3})
    assert str(e.value).startswith("expected an event sold {'count': 3}; emitted: sold {'sku': 'x', 'count': 1")
    with pytest.raises(AssertionError, match="expected no call of Prices.price; made: Prices.price"):
        shop.assert_rpc_not_called('Prices.price')


def test_a_mock_can_raise_and_the_service_sees_it(fannode_service):
    def reserve(sku, count):
        raise OutOfStock(sku)
    shop = fannode_service(Shop, mocks={'Prices.price': 5, 'Stock.reserve': reserve})
    with pytest.raises(fannode.RemoteError) as e:
        shop.rpc.buy(sku='x')
    assert e.value.remote_type.endswith('OutOfStock')
    shop.assert_not_emitted('sold')


def test_an_unmocked_dependency_fails_at_once_naming_it(fannode_service):
    shop = fannode_service(Shop, mocks={'Prices.price': 5})
    with pytest.raises(fannode.RemoteError) as e:
        shop.rpc.buy(sku='x')
    assert type(e.value).__name__ == 'UnknownService' and "'Stock' is registered" in str(e.value)
    with pytest.raises(UnknownService):
        shop.proxy('Nobody').anything()


def test_config_overrides_reach_the_interface(fannode_service):
    shop = fannode_service(Shop, mocks=MOCKS, config={'currency': 'CHF'})
    assert shop.interface.currency == 'CHF'
    shop.rpc.buy(sku='x')
    shop.assert_emitted('sold', {'total': {'currency': 'CHF'}})


def test_events_reach_handlers_and_failures_are_recorded(fannode_cluster):
    Audit.seen.clear()
    cluster = fannode_cluster(Shop, Audit, mocks=MOCKS)
    cluster.add(Audit)  # a second instance: a broadcast handler runs in both
    cluster.proxy('Shop').buy(sku='x')
    cluster.wait_handled('sold', count=2)
    assert Audit.seen == ['x', 'x']
    cluster.emit('sold', {'sku': 'bad'})
    handled = cluster.wait_handled('sold', count=4)
    assert [type(h.error).__name__ for h in handled[2:]] == ['ValueError', 'ValueError']


def test_wait_handled_says_what_was_handled_when_it_times_out(fannode_cluster):
    cluster = fannode_cluster(Audit)
    with pytest.raises(AssertionError, match=r'expected 1 handled other event\(s\) within 0.1s; handled: none'):
        cluster.wait_handled('other', timeout=0.1)


def test_log_lines_carry_the_trace_id_of_the_call(fannode_service):
    shop = fannode_service(Shop, mocks=MOCKS)
    shop.rpc.buy(sku='x')
    call = shop.assert_rpc_called('Shop.buy')
    shop.assert_logged('sold 1 of x', trace_id=call.trace_id)
    with pytest.raises(AssertionError, match=r"expected a log line with 'sold 9' .*logged: .*sold 1 of x"):
        shop.assert_logged('sold 9', trace_id=call.trace_id)


def test_web_interfaces_get_a_test_client_and_a_real_port(fannode_cluster):
    cluster = fannode_cluster(Front, Shop, mocks=MOCKS)
    response = cluster.web().get('/buy/abc')
    assert response.status_code == 200 and response.json == {'paid': 5}
    assert response.headers['X-Trace-Id'] == cluster.assert_rpc_called('Shop.buy').trace_id
    assert cluster.web('Front').get('/nope').status_code == 404
    with pytest.raises(KeyError, match="no web interface 'Shop' here"):
        cluster.web('Shop')


def test_several_instances_share_the_calls(fannode_cluster):
    cluster = fannode_cluster(Shop, mocks=MOCKS)
    cluster.add(Shop, instances=2)
    served = {cluster.proxy('Shop').whoami() for _ in range(30)}
    assert len(served) == 3


def test_stopping_leaves_nothing_registered():
    with ServiceUnderTest(Shop, mocks=MOCKS) as shop:
        registry = shop.registry
        assert list(registry.services()) == ['Shop']
    with TestCluster() as empty:
        assert empty.registry.services() == {}


def test_wait_until_returns_the_value_or_says_what_it_waited_for():
    assert wait_until(lambda: 42) == 42
    with pytest.raises(AssertionError, match='timed out after 0.05s waiting for the moon'):
        wait_until(lambda: False, timeout=0.05, message='the moon')
