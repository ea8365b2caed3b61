"""The arguments of each hub verb, declared once beside its method and checked before it
runs: what the network sends is refused with one line naming the verb and the field
(`hub.register: instance.started: expected a number, got str 'zzz'`), never stored.

    @verb(service=NAME, watch=BOOL)
    def rpc_lookup(self, peer, service, watch=False): ...

An argument without a default in the method's signature is required; one the method does
not take is refused. A check hands back the value it was given, not a copy (requests carry
thousands of events and records); only a text spec that cuts (`clip`) changes it, in place.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable, TypeVar

from fannode.core.limits import setting
from fannode.core import text
from fannode.core.text import VISIBLE
from fannode.exceptions import BadArguments
from fannode.hub.budget import footprint

# Longest name the hub takes: a service, queue, consumer, instance id, pattern, endpoint.
MAX_NAME = setting('FANNODE_HUB_MAX_NAME', 512, 1)
# Most items in one list or map of an argument (ids to heartbeat, events to publish...).
MAX_ITEMS = setting('FANNODE_HUB_MAX_ITEMS', 10_000, 1)
# Longest free text kept (a dead letter's reason); longer is cut, not refused.
MAX_TEXT = setting('FANNODE_HUB_MAX_TEXT', 4096, 16)

F = TypeVar('F', bound=Callable[..., Any])


class Invalid(Exception):
    """A value that does not fit; `path` is filled in on the way out."""

    def __init__(self, problem: str, path: str = ''):
        super().__init__(problem)
        self.problem = problem
        self.path = path


def short(value: Any) -> str:
    """The start of a value's repr, for a refusal: shorter than elsewhere, since a hub
    refusal often quotes a field inside a list inside a map."""
    return text.short(value, 40)


def shown(value: Any) -> str:
    """A bad value in a message: its type, and the start of it."""
    return '%s %s' % (type(value).__name__, short(value))


class Spec:
    def check(self, value: Any) -> Any:
        raise NotImplementedError


class Str(Spec):
    def __init__(self, max: int | None = None, min: int = 1, check: Callable[[str], Any] | None = None,
                 clip: bool = False):
        self.max = max
        self.min = min
        self.test = check  # raises ValueError/UsageError-like errors with a message
        self.clip = clip

    def check(self, value: Any) -> str:
        if type(value) is not str:
            raise Invalid('expected a string, got %s' % shown(value))
        most = MAX_NAME if self.max is None else self.max
        if self.clip:  # free text (a reason): kept, shown rather than sent, then cut
            if not value.isprintable():
                value = value.translate(VISIBLE)
            if len(value) > most:
                value = value[:most - 1] + '…'
        elif len(value) > most:
            raise Invalid('longer than %d characters (%d)' % (most, len(value)))
        elif not value.isprintable():  # a name: it would end up in log lines and refusals raw
            raise Invalid('%s has control characters' % short(value))
        if len(value) < self.min:
            raise Invalid('must not be empty')
        if self.test is not None:
            try:
                self.test(value)
            except Exception as e:  # the rule's own one-line message
                raise Invalid(str(e)) from None
        return value


class Number(Spec):
    """A finite int or float in [low, high]; `whole` takes ints only. Never a bool."""

    def __init__(self, low: float, high: float, whole: bool = False):
        self.low, self.high, self.whole = low, high, whole

    def check(self, value: Any) -> Any:
        kinds: tuple[type, ...] = (int,) if self.whole else (int, float)
        if type(value) not in kinds:
            raise Invalid('expected %s, got %s' % ('a whole number' if self.whole else 'a number', shown(value)))
        # Compared as they are: an int too big for a float (10**400 arrives as one) must not
        # be turned into one, which raises OverflowError.
        if type(value) is float and not math.isfinite(value) or not self.low <= value <= self.high:
            raise Invalid('must be from %s to %s, got %s' % (self.low, self.high, short(value)))
        return value


class Bool(Spec):
    def check(self, value: Any) -> bool:
        if type(value) is not bool:
            raise Invalid('expected true or false, got %s' % shown(value))
        return value


class Maybe(Spec):
    """`inner`, or null."""

    def __init__(self, inner: Spec):
        self.inner = inner

    def check(self, value: Any) -> Any:
        return None if value is None else self.inner.check(value)


class ListOf(Spec):
    def __init__(self, item: Spec, max: int | None = None, min: int = 0):
        self.item, self.max, self.min = item, max, min

    def check(self, value: Any) -> list:
        if type(value) is not list:
            raise Invalid('expected a list, got %s' % shown(value))
        most = MAX_ITEMS if self.max is None else self.max
        if not self.min <= len(value) <= most:
            raise Invalid('expected %d to %d items, got %d' % (self.min, most, len(value)))
        if passes(self.item):
            return value
        for i, item in enumerate(value):
            try:
                checked = self.item.check(item)
            except Invalid as e:
                e.path = '[%d]%s' % (i, e.path)
                raise
            if checked is not item:  # a text cut to its length
                value[i] = checked
        return value


class MapOf(Spec):
    """A map of string keys (`key`) to values (`value`, which must not cut what it checks)."""

    def __init__(self, value: Spec, key: Spec | None = None, max: int | None = None):
        self.value, self.key, self.max = value, key or Str(), max

    def check(self, value: Any) -> dict:
        if type(value) is not dict:
            raise Invalid('expected a map, got %s' % shown(value))
        most = MAX_ITEMS if self.max is None else self.max
        if len(value) > most:
            raise Invalid('expected at most %d entries, got %d' % (most, len(value)))
        anything = passes(self.value)
        for k, v in value.items():
            try:
                self.key.check(k)
                if not anything and self.value.check(v) is not v:
                    raise Invalid('cannot be cut in a map')  # no spec used in a map cuts
            except Invalid as e:
                e.path = '[%s]%s' % (short(k), e.path)
                raise
        return value


class Map(Spec):
    """Any map, its contents as they are (an event's body: the handler's business)."""

    def check(self, value: Any) -> dict:
        if type(value) is not dict:
            raise Invalid('expected a map, got %s' % shown(value))
        return value


class Fields(Spec):
    """A map with known keys: `required` ones and `optional` ones, nothing else."""

    def __init__(self, required: dict[str, Spec], optional: dict[str, Spec] | None = None):
        self.required, self.optional = required, optional or {}
        self.fields = dict(self.required, **self.optional)

    def check(self, value: Any) -> dict:
        if type(value) is not dict:
            raise Invalid('expected a map, got %s' % shown(value))
        for name in self.required:
            if name not in value:
                raise Invalid('missing field %r' % name)
        for name, item in value.items():
            spec = self.fields.get(name) if type(name) is str else None
            if spec is None:
                raise Invalid('unknown field %s (expected %s)' % (short(name), ', '.join(self.fields)))
            try:
                checked = spec.check(item)
            except Invalid as e:
                e.path = '.%s%s' % (name, e.path)
                raise
            if checked is not item:
                value[name] = checked
        return value


class Anything(Spec):
    """Any value the codec carried; with `max`, at most that many bytes in memory (by
    footprint), `env` naming the variable that sets it."""

    def __init__(self, max: int | None = None, env: str = ''):
        self.max = max
        self.env = env

    def check(self, value: Any) -> Any:
        if self.max is not None:
            size = footprint(value)
            if size > self.max:
                raise Invalid('too big: about %d bytes in memory, the most is %d%s' % (
                    size, self.max, ' (%s)' % self.env if self.env else ''))
        return value


def passes(spec: Spec) -> bool:
    """Whether `spec` takes any value as it is (nothing to check, item by item)."""
    return isinstance(spec, Anything) and spec.max is None


NAME = Str()
BOOL = Bool()


def verb(**args: Spec) -> Callable[[F], F]:
    """Declare the arguments of an `rpc_*` method (all but `peer`)."""
    def declare(func: F) -> F:
        params = list(inspect.signature(func).parameters.values())[2:]  # self, peer
        assert {p.name for p in params} == set(args), '%s: declare %s' % (func.__name__, [p.name for p in params])
        func.args = {p.name: (args[p.name], p.default is inspect.Parameter.empty)  # type: ignore[attr-defined]
                     for p in params}
        return func
    return declare


def check_body(subject: str, func: Callable[..., Any], body: Any) -> dict[str, Any]:
    """The arguments of a request, checked against its verb's declaration."""
    if type(body) is not dict:
        raise BadArguments('%s: the body must be a map of arguments, got %s' % (subject, shown(body)))
    declared: dict[str, tuple[Spec, bool]] = getattr(func, 'args')
    for name in body:
        if name not in declared:
            raise BadArguments('%s: unknown argument %s (it takes %s)' % (
                subject, short(name), ', '.join(declared) or 'none'))
    checked = {}
    for name, (spec, required) in declared.items():
        if name not in body:
            if required:
                raise BadArguments('%s: missing argument %r' % (subject, name))
            continue
        try:
            checked[name] = spec.check(body[name])
        except Invalid as e:
            raise BadArguments('%s: %s%s: %s' % (subject, name, e.path, e.problem)) from None
    return checked
