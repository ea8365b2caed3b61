"""Where commands look for the registry: flag, environment, ./node.yml, the local hub."""
from __future__ import annotations

import pytest

from fannode.exceptions import ConfigError
from fannode.settings import DEFAULT_HUB, resolve_url


@pytest.fixture
def node_file(tmp_path, monkeypatch):
    monkeypatch.delenv('FANNODE_REGISTRY', raising=False)
    monkeypatch.delenv('FANNODE_EVENTS', raising=False)
    return tmp_path / 'node.yml'


def test_the_local_hub_is_the_default(node_file):
    assert resolve_url('registry', None, str(node_file)) == DEFAULT_HUB == 'hub://127.0.0.1:4010'


def test_node_yml_then_environment_then_flag(node_file, monkeypatch):
    node_file.write_text('registry: hub://127.0.0.1:5000\nevents: hub\n')
    assert resolve_url('registry', None, str(node_file)) == 'hub://127.0.0.1:5000'
    assert resolve_url('events', None, str(node_file)) == DEFAULT_HUB  # 'hub' alone
    monkeypatch.setenv('FANNODE_REGISTRY', 'hub://127.0.0.1:6000')
    assert resolve_url('registry', None, str(node_file)) == 'hub://127.0.0.1:6000'
    assert resolve_url('registry', 'hub://127.0.0.1:7000', str(node_file)) == 'hub://127.0.0.1:7000'


def test_a_non_string_url_in_node_yml_names_file_line_and_key(node_file):
    node_file.write_text('instances: {}\nregistry: [a]\n')
    with pytest.raises(ConfigError, match=r'node.yml:2: registry: expected a URL string, got list'):
        resolve_url('registry', None, str(node_file))


def test_events_follow_the_registry_hub_unless_set(node_file, monkeypatch):
    from fannode.settings import resolve_events_url
    assert resolve_events_url(None, None, str(node_file)) == DEFAULT_HUB
    assert resolve_events_url(None, 'hub://127.0.0.1:5000', str(node_file)) == 'hub://127.0.0.1:5000'
    monkeypatch.setenv('FANNODE_REGISTRY', 'hub://127.0.0.1:6000')
    assert resolve_events_url(None, None, str(node_file)) == 'hub://127.0.0.1:6000'
    monkeypatch.setenv('FANNODE_EVENTS', 'hub://127.0.0.1:7000')
    assert resolve_events_url(None, None, str(node_file)) == 'hub://127.0.0.1:7000'
    assert resolve_events_url('local://t', None, str(node_file)) == 'local://t'


def test_events_hub_in_node_yml_means_the_hub_the_registry_names(node_file, monkeypatch):
    """The workshop's node.yml says `events: hub`; a shell that points FANNODE_REGISTRY at
    another hub (a tmuxinator session, a test) must get its events there too."""
    from fannode.settings import resolve_events_url
    node_file.write_text('registry: hub\nevents: hub\ninstances: {}\n')
    assert resolve_events_url(None, None, str(node_file)) == DEFAULT_HUB
    monkeypatch.setenv('FANNODE_REGISTRY', 'hub://127.0.0.1:6000')
    assert resolve_events_url(None, None, str(node_file)) == 'hub://127.0.0.1:6000'
    monkeypatch.setenv('FANNODE_REGISTRY', 'zookeeper://127.0.0.1:2181/x')
    assert resolve_events_url(None, None, str(node_file)) == DEFAULT_HUB
