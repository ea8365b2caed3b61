"""Version pins: which registered instances a caller asking for `version='^1.2'` may reach.

A pin is an npm-style range of semantic versions (`1.4.2`, `1`, `1.4`, `^1.2`, `~1.4`,
`>=1.0`, see semantic_version.NpmSpec) matched against each instance's announced
`version` (its config's `version:`). An instance version that is not a semantic version
never matches a range, but does match a pin that is exactly the same string, so
`version: blue` can still be pinned with `version='blue'`.

`split_versioned('Greeting@^1.2')` is how the CLI and the gateway read `Service@range`.
`newest` orders versions for unpinned calls (fannode.calls.routes); `route_key` is the
shared-config key `fannode route` keeps a service's route under.
"""
from __future__ import annotations

import collections
from typing import Any, Iterable

import semantic_version  # type: ignore[import-untyped]  # no type information shipped

from fannode.exceptions import UsageError

MAX_PIN = 100  # characters: a pin comes from command lines and HTTP paths too
ROUTE_PREFIX = 'fannode.route.'  # + service: the version unpinned calls go to (`fannode route`)


class Pin:
    """A parsed version range; `matches(version)` for an instance's version string."""

    __slots__ = ('text', 'spec')

    def __init__(self, text: str):
        if not isinstance(text, str) or not text.strip():
            raise UsageError('version: expected a version or range like 1.4.2, ^1.2 or >=1.0, got %r'
                             % (text if not isinstance(text, str) else text[:MAX_PIN]))
        text = text.strip()
        if len(text) > MAX_PIN or not text.isprintable():
            raise UsageError('version %r: expected a version or range of up to %d printable characters'
                             % (text[:MAX_PIN], MAX_PIN))
        try:
            self.spec: semantic_version.NpmSpec | None = semantic_version.NpmSpec(text)
        except ValueError as e:
            if any(c in text for c in '^~<>=*| '):  # meant as a range: say what is wrong with it
                raise UsageError('version %r: not a valid range (%s); expected e.g. 1.4.2, 1, ^1.2, ~1.4 or >=1.0'
                                 % (text, str(e).splitlines()[0][:200])) from None
            self.spec = None  # a plain label ('blue'): matches only an instance version equal to it
        self.text = text

    def matches(self, version: Any) -> bool:
        if not isinstance(version, str) or not version:
            return False
        if version == self.text:
            return True
        if self.spec is None:
            return False
        try:
            return self.spec.match(semantic_version.Version(version))
        except ValueError:  # not a semantic version: never in a range
            return False

    def select(self, instances: list, ready: list) -> tuple[list, list]:
        """Those of `instances` and of `ready` whose version matches."""
        return [i for i in instances if self.matches(i.version)], [i for i in ready if self.matches(i.version)]

    def __repr__(self) -> str:
        return '<Pin %s>' % self.text


def pin(version: Any) -> Pin | None:
    """A proxy's `version=`: None (any instance), a Pin, or a string parsed into one;
    UsageError in one line for a bad range."""
    if version is None or isinstance(version, Pin):
        return version
    return Pin(version)


def split_versioned(name: str) -> tuple[str, str | None]:
    """'Greeting@^1.2' -> ('Greeting', '^1.2'); 'Greeting' -> ('Greeting', None). The range
    is checked (UsageError naming it when bad); the service name is the caller's to check."""
    service, at, version = name.partition('@')
    if not at:
        return name, None
    if not service:
        raise UsageError('%r: expected Service@version, e.g. Greeting@^1.2' % name[:MAX_PIN])
    return service, pin(version).text  # type: ignore[union-attr]  # pin() of a str is a Pin


def existing(instances: Iterable[Any]) -> str:
    """The versions instances announce, most common first, then newest first:
    '1.4.2 ×2, 2.0.0 ×1, 1.0.0 ×1'."""
    found = collections.Counter(version_of(i) for i in instances)
    ordered = sorted(found, key=lambda v: (found[v], rank(v)), reverse=True)
    return ', '.join('%s ×%d' % (v or '(none)', found[v]) for v in ordered)


def version_of(instance: Any) -> str:
    """An instance's announced version, '' when it has none."""
    version = getattr(instance, 'version', '')
    return version if isinstance(version, str) else ''


def rank(version: str) -> tuple:
    """Sort key of versions: semantic versions in semver order, above any other label
    (in string order), above no version at all."""
    try:
        return (2, semantic_version.Version(version), '')
    except ValueError:
        return (1 if version else 0, _ZERO, version)


_ZERO = semantic_version.Version('0.0.0')


def newest(versions: Iterable[str]) -> str:
    """The highest of `versions` by `rank` ('' when there are none)."""
    return max(versions, key=rank, default='')


def counts(instances: Iterable[Any]) -> dict[str, int]:
    """{version: how many instances}, newest first ('' for instances without one)."""
    found = collections.Counter(version_of(i) for i in instances)
    return {v: found[v] for v in sorted(found, key=rank, reverse=True)}


def route_key(service: str) -> str:
    """The shared-config key of `service`'s route."""
    return ROUTE_PREFIX + service
