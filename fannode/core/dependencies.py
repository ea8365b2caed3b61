"""The services a service needs, as it declares them: `hard` ones it cannot serve without
(the instance is not ready while one has no ready instance), `soft` ones it can (calls to
them fail fast; nothing waits for them).

Declared in the interface's section of the service config, or on the class:

    interfaces:
      Orders:
        class: orders:Orders
        dependencies: {hard: [Store], soft: [Mailer]}

    class Orders(fannode.Interface):
        dependencies = {'hard': ['Store'], 'soft': ['Mailer']}

The config's `dependencies` replaces the class's whole (an operator can loosen or tighten
what the code says without editing it). Read here, in core, so the container and the node
(which orders starts by the hard ones) read them the same way.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from typing import Any

from fannode.core.config import Config

KINDS = ('hard', 'soft')
KEY = 'dependencies'  # in an interface's section of the service config
_NAME = re.compile(r'[^\s,]{1,200}')  # a service name as discovery takes it: no spaces, no commas


@dataclasses.dataclass(frozen=True)
class Dependencies:
    hard: tuple[str, ...] = ()
    soft: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.hard or self.soft)

    def to_dict(self) -> dict[str, list[str]]:
        return {'hard': list(self.hard), 'soft': list(self.soft)}


class Invalid(ValueError):
    """A declaration that is not one: `key` is where in it ('hard.1'; '' for the whole)."""

    def __init__(self, key: str, message: str):
        super().__init__('%s: %s' % (key, message) if key else message)
        self.key, self.message = key, message


def parse(value: Any) -> Dependencies:
    """`value` as declared ({hard: [...], soft: [...]}, both optional), or Invalid."""
    if value is None:
        return Dependencies()
    if not isinstance(value, Mapping):
        raise Invalid('', 'expected a mapping like {hard: [Store], soft: [Mailer]}, got %r' % (value,))
    for key in value:
        if key not in KINDS:
            close = difflib.get_close_matches(str(key), KINDS, n=1)
            raise Invalid(str(key), 'unknown key (expected hard or soft)%s' % (
                "; did you mean '%s'?" % close[0] if close else ''))
    found: dict[str, tuple[str, ...]] = {}
    for kind in KINDS:
        names = value.get(kind) or []
        if isinstance(names, str) or not isinstance(names, (list, tuple)):
            raise Invalid(kind, 'expected a list of service names, got %r' % (names,))
        for i, name in enumerate(names):
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise Invalid('%s.%d' % (kind, i), 'expected a service name, got %r' % (name,))
        found[kind] = tuple(dict.fromkeys(names))  # in order, once each
    both = [name for name in found['hard'] if name in found['soft']]
    if both:
        raise Invalid('soft', "'%s' is hard already; name it once" % both[0])
    return Dependencies(found['hard'], found['soft'])


def declared(cls: type, section: Config) -> Dependencies:
    """What the interface `cls`, configured by `section`, depends on: the config's
    `dependencies` when it has one, else the class's. A ConfigError (one line, naming the
    file and key) when either is not a valid declaration."""
    if KEY in section:
        raw = section.get(KEY)
        try:
            return parse(raw.to_dict() if isinstance(raw, Config) else raw)
        except Invalid as e:
            raise section.error('%s.%s' % (KEY, e.key) if e.key else KEY, e.message) from None
    try:
        return parse(getattr(cls, KEY, None))
    except Invalid as e:
        raise section.error('class', '%s.%s: %s' % (cls.__name__, KEY, e)) from None


def merged(each: Mapping[str, Dependencies]) -> Dependencies:
    """One instance's dependencies from those of its interfaces (by service name): hard
    wins over soft, and a service it serves itself is no dependency of it."""
    hard = [n for d in each.values() for n in d.hard if n not in each]
    soft = [n for d in each.values() for n in d.soft if n not in each and n not in hard]
    return Dependencies(tuple(dict.fromkeys(hard)), tuple(dict.fromkeys(soft)))


# -- as registrations announce them (meta 'dependencies' and 'missing') --------------


def strings(value: Any) -> list[str]:
    """The strings of a list read from a registration (anyone may have written it)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def announced(info: Any) -> tuple[list[str], list[str], list[str]]:
    """(hard, soft, missing) as an instance's registration announces them; all empty for
    one that declares nothing. Read with care: it may be of another version, or wrong."""
    meta = info.meta if isinstance(getattr(info, 'meta', None), dict) else {}
    declared = meta.get('dependencies')
    declared = declared if isinstance(declared, dict) else {}
    return strings(declared.get('hard')), strings(declared.get('soft')), strings(meta.get('missing'))


def missing_hard(info: Any) -> list[str]:
    """The hard dependencies an instance announces it misses (why it is not ready)."""
    hard, _, missing = announced(info)
    return [s for s in missing if s in hard]
