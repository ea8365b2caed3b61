"""Circuit breakers in the RPC client: one per instance endpoint, and per service the sum of
its instances'.

An endpoint's breaker opens after `failures` consecutive failures of calls sent there (no
reply in time, the connection lost or down, a reply that cannot be read); a remote error
is the method's answer and a refusal (NACK) says the instance is alive, so neither counts.
Open, the endpoint gets no calls until `cooldown` seconds have passed; then one call goes
through as a probe (half-open): its success closes the breaker, its failure opens it for
another cool-down. A service's breaker is open when every instance's is: a call then fails
at once with CircuitOpen, without touching the network.

Each change is logged once: WARNING when a breaker opens, INFO when it closes; a probe that
fails again is logged at DEBUG only, so a dependency that stays down costs one line.
"""
from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from fannode.core.config import Config
from fannode.exceptions import BadReply, ConfigError, ConnectionLost, RemoteError, Timeout
from fannode.zmqrpc.connection import Call

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = 'closed', 'open', 'half-open'


class Settings(NamedTuple):
    failures: int = 5       # consecutive failures that open a breaker
    cooldown: float = 5.0   # seconds open before one probe call goes through

    def describe(self) -> str:
        return 'failures=%d, cooldown=%gs' % self


DEFAULT = Settings()
KEYS = ('failures', 'cooldown')


def settings_from(value: Any, base: Settings = DEFAULT, where: Config | None = None,
                  key: str = '') -> Settings:
    """Settings from a mapping {failures, cooldown} over `base`; a bad one is a ConfigError
    naming the key (in the config file `where`, or the proxy's `breaker=` argument)."""
    def bad(name: str, message: str) -> ConfigError:
        if where is not None:
            return where.error('%s.%s' % (key, name) if name else key, message)
        return ConfigError('breaker%s: %s' % ('.' + name if name else '', message))

    if not isinstance(value, Mapping):
        raise bad('', 'expected a mapping like {failures: 5, cooldown: 5}, got %s' % type(value).__name__)
    for name in value:
        if name not in KEYS:
            raise bad(str(name), "unknown key (expected one of: %s)" % ', '.join(KEYS))
    failures = value.get('failures', base.failures)
    if type(failures) is not int or failures < 1:
        raise bad('failures', 'expected a whole number of 1 or more, got %r' % (failures,))
    cooldown = value.get('cooldown', base.cooldown)
    if type(cooldown) not in (int, float) or not 0 < cooldown <= 3600:
        raise bad('cooldown', 'expected seconds, more than 0 and at most 3600, got %r' % (cooldown,))
    return Settings(failures, float(cooldown))


class BreakerConfig:
    """The `breakers:` section of a service config: `default: {failures, cooldown}`, one
    such mapping per called service by its name, and `enabled: false` to turn them off."""

    def __init__(self, enabled: bool = True, default: Settings = DEFAULT,
                 services: dict[str, Settings] | None = None):
        self.enabled = enabled
        self.default = default
        self.services = services or {}

    @classmethod
    def from_config(cls, config: Config) -> 'BreakerConfig':
        section = config.section('breakers')
        enabled = section.require('enabled', bool, True)
        value = section.get('default')
        default = settings_from({} if value is None else value, DEFAULT, section, 'default')
        services = {}
        for name in section:
            if name in ('enabled', 'default'):
                continue
            if not isinstance(name, str) or not re.fullmatch(r'[\w-]+', name):
                raise section.error(name, 'expected a service name (or default, enabled)')
            value = section.get(name)
            services[name] = settings_from({} if value is None else value, default, section, name)  # `Mailer:`
        return cls(enabled, default, services)

    def settings(self, service: str) -> Settings | None:
        """What `service`'s breakers use; None when breakers are off."""
        return self.services.get(service, self.default) if self.enabled else None


class Breaker:
    """One breaker: closed, open (until `opened + cooldown`), or half-open with one probe."""

    __slots__ = ('name', 'settings', 'state', 'failures', 'opened', 'probing', 'last', 'was_up')

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.settings = settings
        self.state = CLOSED
        self.failures = 0
        self.opened = 0.0
        self.probing = False
        self.last = ''         # the last failure, for the log line and inspect
        self.was_up = False    # its connection has been up: once down, a send that cannot go is a failure

    def allow(self, now: float) -> bool:
        """Whether a call may go now; in half-open, True once (the probe) until it ends."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if now < self.opened + self.settings.cooldown:
                return False
            self.state = HALF_OPEN
            self.probing = False
            log.debug('circuit breaker for %s half-open: one probe call goes through', self.name)
        if self.probing:
            return False
        self.probing = True
        return True

    def succeeded(self) -> None:
        self.failures = 0
        self.probing = False
        if self.state != CLOSED:
            self.state = CLOSED
            log.info('circuit breaker for %s closed: calls go through again', self.name)

    def failed(self, reason: str) -> None:
        self.failures += 1
        self.last = reason
        if self.state == HALF_OPEN:
            self.state, self.opened, self.probing = OPEN, time.monotonic(), False
            log.debug('circuit breaker for %s: the probe failed (%s); open for %gs more',
                      self.name, reason, self.settings.cooldown)
        elif self.state == CLOSED and self.failures >= self.settings.failures:
            self.state, self.opened = OPEN, time.monotonic()
            log.warning('circuit breaker for %s opened after %d consecutive failure(s), the last: %s; '
                        'calls go elsewhere or fail at once for %gs', self.name, self.failures, reason,
                        self.settings.cooldown)

    def released(self) -> None:
        """The call ended neither way (refused, never run): the probe slot is free again."""
        self.probing = False

    def retry_in(self, now: float) -> float | None:
        """Seconds until an open breaker lets a probe through; None unless open."""
        if self.state != OPEN:
            return None
        return max(0.0, self.opened + self.settings.cooldown - now)

    def snapshot(self) -> dict[str, Any]:
        return {'state': self.state, 'failures': self.failures}


class ServiceBreakers:
    """The breakers of one called service: one per endpoint it was called at."""

    def __init__(self, service: str, settings: Settings):
        self.service = service
        self.settings = settings
        self.endpoints: dict[str, Breaker] = {}

    def endpoint(self, endpoint: str) -> Breaker:
        breaker = self.endpoints.get(endpoint)
        if breaker is None:
            breaker = self.endpoints[endpoint] = Breaker('%s at %s' % (self.service, endpoint), self.settings)
        return breaker

    def keep(self, endpoints: set[str]) -> None:
        """Forget the breakers of endpoints that left discovery (an instance that comes
        back at one starts closed)."""
        for endpoint in [e for e in self.endpoints if e not in endpoints]:
            del self.endpoints[endpoint]

    def retry_in(self, now: float) -> float | None:
        waits = [b.retry_in(now) for b in self.endpoints.values()]
        return min((w for w in waits if w is not None), default=None)

    def state(self) -> str:
        states = {b.state for b in self.endpoints.values()}
        if not states or CLOSED in states:
            return CLOSED
        return HALF_OPEN if HALF_OPEN in states else OPEN

    def snapshot(self, now: float) -> dict[str, Any]:
        state = self.state()
        return {'state': state, 'failures': max((b.failures for b in self.endpoints.values()), default=0),
                # Rounded up to the millisecond: 0.0 only once the probe may really go.
                'retry_in': math.ceil((self.retry_in(now) or 0.0) * 1000) / 1000 if state == OPEN else None,
                'settings': self.settings._asdict(),
                'endpoints': {e: b.snapshot() for e, b in sorted(self.endpoints.items())}}


class Breakers:
    """Every breaker of one client, by called service (and by proxy settings, when a proxy
    brings its own)."""

    def __init__(self, config: BreakerConfig | None = None):
        self.config = config or BreakerConfig()
        self.services: dict[tuple[str, Settings | None], ServiceBreakers] = {}

    def for_call(self, service: str, override: Settings | bool | None = None) -> ServiceBreakers | None:
        """The breakers a call to `service` goes through: `override` is a proxy's
        `breaker=` (None: the config's, False: none, Settings: its own)."""
        if override is False:
            return None
        own = override if isinstance(override, Settings) else None
        found = self.services.get((service, own))
        if found is None:
            settings = own or self.config.settings(service)
            if settings is None:
                return None
            found = self.services[(service, own)] = ServiceBreakers(service, settings)
        return found

    def keep(self, service: str, endpoints: set[str]) -> None:
        for (name, _), breakers in self.services.items():
            if name == service:
                breakers.keep(endpoints)

    def snapshot(self) -> dict[str, Any]:
        """What get_metrics shows: per service, its state and its endpoints'."""
        now = time.monotonic()
        out = {}
        for (service, own), breakers in sorted(self.services.items(), key=lambda kv: (kv[0][0], kv[0][1] or ())):
            out[service if own is None else '%s (proxy: %s)' % (service, own.describe())] = breakers.snapshot(now)
        return out


def open_endpoints(snapshot: Any) -> tuple[int, int]:
    """(open or half-open, all) endpoints in one service's breaker snapshot, as
    get_metrics shows it (read with care: it comes from another process)."""
    endpoints = snapshot.get('endpoints') if isinstance(snapshot, dict) else None
    endpoints = endpoints if isinstance(endpoints, dict) else {}
    bad = sum(1 for b in endpoints.values() if isinstance(b, dict) and b.get('state') in (OPEN, HALF_OPEN))
    return bad, len(endpoints)


class GuardedCall(Call):
    """A call whose outcome feeds the breaker of the endpoint it was sent to."""

    __slots__ = ('breaker', 'clamped')

    def __init__(self, subject: str, id: int, timeout: float, clamped: bool = False):
        super().__init__(subject, id, timeout)
        self.breaker: Breaker | None = None  # set when sent
        # Its timeout was cut to what the request it is made under had left: running out
        # of that time says nothing about the instance, so it is no failure of its breaker.
        self.clamped = clamped

    def _ended(self) -> None:
        """The breaker hears of the outcome before the caller does (a half-open probe's
        answer closes it before the caller's next call)."""
        breaker, self.breaker = self.breaker, None
        if breaker is None:
            return
        exc = self._exc
        if exc is None or isinstance(exc, RemoteError):  # an answer: the instance works
            breaker.succeeded()
        elif isinstance(exc, (ConnectionLost, BadReply)) or (isinstance(exc, Timeout) and not self.clamped):
            breaker.failed('%s: %s' % (type(exc).__name__, exc))
        else:  # refused (a NACK: alive, never run), or failed here by a test double
            breaker.released()
