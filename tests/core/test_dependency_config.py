"""Declaring hard and soft dependencies: in the service config or on the class, and the
one-line error a bad declaration gets."""
from __future__ import annotations

import pytest

import fannode
from fannode.core.config import loads_config
from fannode.core.dependencies import Dependencies, declared, merged
from fannode.exceptions import ConfigError


class Orders(fannode.Interface):
    dependencies = {'hard': ['Store'], 'soft': ['Mailer']}


class Plain(fannode.Interface):
    pass


def section(text: str):
    lines = ''.join('    %s\n' % line for line in text.splitlines())
    config = loads_config('interfaces:\n  Orders:\n    class: x:Orders\n' + lines, 'orders.yml')
    return config.section('interfaces').section('Orders')


def test_the_class_declares_them():
    assert declared(Orders, section('')) == Dependencies(('Store',), ('Mailer',))


def test_nothing_declared_is_no_dependency():
    assert not declared(Plain, section(''))


def test_the_config_replaces_the_class_whole():
    assert declared(Orders, section('dependencies: {soft: [Store]}')) == Dependencies((), ('Store',))
    assert declared(Orders, section('dependencies: {}')) == Dependencies()
    assert declared(Plain, section('dependencies:\n  hard: [Store, Store, Prices]')) == \
        Dependencies(('Store', 'Prices'), ())


@pytest.mark.parametrize('text, error', [
    ('dependencies: {hard: Store}',
     "orders.yml:4: interfaces.Orders.dependencies.hard: expected a list of service names, got 'Store'"),
    ('dependencies:\n  hrd: [Store]',
     "orders.yml:5: interfaces.Orders.dependencies.hrd: unknown key (expected hard or soft); "
     "did you mean 'hard'?"),
    ('dependencies:\n  soft:\n    - Mailer\n    - 3',
     'orders.yml:7: interfaces.Orders.dependencies.soft.1: expected a service name, got 3'),
    ('dependencies:\n  hard: [two words]',
     "orders.yml:5: interfaces.Orders.dependencies.hard.0: expected a service name, got 'two words'"),
    ('dependencies: [Store]',
     "orders.yml:4: interfaces.Orders.dependencies: expected a mapping like {hard: [Store], soft: [Mailer]}, "
     "got ['Store']"),
    ('dependencies: {hard: [Store], soft: [Store]}',
     "orders.yml:4: interfaces.Orders.dependencies.soft: 'Store' is hard already; name it once"),
])
def test_a_bad_declaration_in_the_config_is_one_line_naming_file_and_key(text, error):
    with pytest.raises(ConfigError) as e:
        declared(Plain, section(text))
    assert str(e.value) == error


def test_a_bad_declaration_on_the_class_names_the_class():
    class Broken(fannode.Interface):
        dependencies = {'hard': 'Store'}

    with pytest.raises(ConfigError) as e:
        declared(Broken, section(''))
    assert str(e.value) == ("orders.yml:3: interfaces.Orders.class: Broken.dependencies: hard: "
                            "expected a list of service names, got 'Store'")


def test_an_instance_merges_its_interfaces_hard_first_and_never_needs_itself():
    each = {'Orders': Dependencies(('Store', 'Billing'), ('Mailer',)),
            'Billing': Dependencies(('Store',), ('Orders', 'Audit')),
            'Front': Dependencies((), ('Store',))}
    assert merged(each) == Dependencies(('Store',), ('Mailer', 'Audit'))
