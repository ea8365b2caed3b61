"""Shared config without a cluster: key and value checks, what only local:// does (its keys
go with the last client of a URL), and a service under test that follows a key. What every
backend does, local:// included, is in tests/contracts/test_shared_config_contract.py."""
from __future__ import annotations

import uuid

import pytest

from fannode.exceptions import UsageError
from fannode.sharedconfig import get_shared_config
from fannode.sharedconfig.base import check_key, check_value
from fannode.testing import ServiceUnderTest, wait_until


@pytest.mark.parametrize('key', ['a', 'greeting.style', 'A_b-9.c_d.e-f', 'x' * 200])
def test_good_keys(key):
    assert check_key(key) == key


@pytest.mark.parametrize('key', ['', '.', '..', '.a', 'a.', 'a..b', 'a b', 'a/b', 'é', 'x' * 201, None, 3])
def test_bad_keys_are_a_clear_error(key):
    with pytest.raises(UsageError, match='bad config key .*dotted words'):
        check_key(key)


def test_values_go_through_json():
    assert check_value('k', (1, 2)) == [1, 2]
    assert check_value('k', {'a': [True, 1.5, 'x']}) == {'a': [True, 1.5, 'x']}
    with pytest.raises(UsageError, match='cannot be null'):
        check_value('k', None)
    with pytest.raises(UsageError, match='must be JSON-able'):
        check_value('k', {1, 2})
    with pytest.raises(UsageError, match='must be JSON-able'):
        check_value('k', float('nan'))


def test_an_unknown_scheme_names_the_known_ones():
    with pytest.raises(UsageError, match="no config backend for scheme 'nope'.*hub, local, zookeeper"):
        get_shared_config('nope://x')


@pytest.fixture
def local():
    """local() -> a client of this test's own local:// URL; all are closed after the test."""
    url = 'local://cfg-%s' % uuid.uuid4().hex[:8]
    made = []

    def make():
        made.append(get_shared_config(url))
        return made[-1]
    yield make
    for c in made:
        c.close()


def test_local_clients_of_one_url_share_keys_until_the_last_closes(local):
    first, second = local(), local()
    first.set('k', 1)
    assert second.get('k') == 1
    first.close()
    assert second.get('k') == 1
    second.close()
    assert local().get('k') is None


def test_a_failing_subscriber_is_logged_and_others_still_hear(local, caplog):
    cfg = local()
    seen = []

    def broken(key, value):
        raise RuntimeError('boom')
    cfg.subscribe('k', broken)
    cfg.subscribe('k', lambda key, value: seen.append(value))
    cfg.set('k', 'v')
    wait_until(lambda: seen == ['v'])
    assert 'config subscriber' in caplog.text and 'boom' in caplog.text


def test_a_service_follows_a_key_through_self_shared_config():
    from styled import Styled
    with ServiceUnderTest(Styled) as styled:
        assert styled.rpc.greet(name='Jo') == 'Hi, Jo!'
        cfg = get_shared_config(styled.url)
        try:
            cfg.set('greeting.style', 'Moin')
            wait_until(lambda: styled.rpc.greet(name='Jo') == 'Moin, Jo!', message='the new style')
            cfg.delete('greeting.style')
            wait_until(lambda: styled.rpc.greet(name='Jo') == 'Hi, Jo!', message='the default again')
        finally:
            cfg.close()


def test_shared_config_needs_a_running_instance():
    from styled import Styled
    with pytest.raises(RuntimeError, match='not running in a fannode instance'):
        Styled().shared_config
