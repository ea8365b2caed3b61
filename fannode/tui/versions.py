"""Versions in `fannode top`: which version each instance runs, which one unpinned calls
reach (the service's route, else the newest: fannode.calls.routes), and the `v` key that
switches the route of the selected service (docs/versions.md)."""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

from fannode.calls.routes import describe
from fannode.core.versions import route_key, version_of

log = logging.getLogger(__name__)


def versioned(instances: list) -> bool:
    return any(version_of(i) for i in instances)


def with_versions(children: list, instances: list, route: str | None) -> tuple[list, str]:
    """The instance rows with their version (dim when unpinned calls do not reach it), and
    the service row's text: '→ 1.0.0 (route 1)' or '→ 2.0.0 (newest)'."""
    reached = describe('', instances, route)['current']  # newest first
    by_id = {i.id: version_of(i) for i in instances}
    rows = [dataclasses.replace(r, version=by_id[r.instance] or '-', serving=by_id[r.instance] in reached)
            if r.instance in by_id else r for r in children]
    text = ', '.join(v or '(none)' for v in reached) or '-'
    return rows, '→ %s (%s)' % (text, 'route %s' % route if route else 'newest')


class RouteSwitch:
    """The routes of the services top shows, read at each poll, and `v`: in the source's
    thread (the shared config is gevent-based)."""

    def __init__(self, registry_url: str):
        self.url = registry_url
        self.config: Any = None
        self.problem = ''

    def _config(self) -> Any:
        if self.config is None:
            from fannode.sharedconfig import get_shared_config
            self.config = get_shared_config(self.url)
        return self.config

    def routes(self, services: dict[str, list]) -> dict[str, str | None]:
        """{service: its route or None} for the services that announce versions; nothing
        (and a log line, once) when the shared config cannot be read."""
        found: dict[str, str | None] = {}
        try:
            for name, instances in services.items():
                if versioned(instances):
                    route = self._config().get(route_key(name))
                    found[name] = route if isinstance(route, str) else None
        except Exception as e:  # noqa: BLE001 - the versions still show, without routes
            if not self.problem:
                log.warning('cannot read routes at %s: %s', self.url, e)
            self.problem = str(e)
        return found

    def switch(self, service: str, instances: list) -> str:
        """Route `service` to its next older live version; after the oldest, back to the
        newest (the route cleared). Returns the status line."""
        from fannode.exceptions import FannodeError
        if not service or not instances:
            raise FannodeError('select a service row (or one of its instances) to switch its version')
        route = self._config().get(route_key(service))
        row = describe(service, instances, route if isinstance(route, str) else None)
        live = [v for v in row['versions'] if v]
        if len(live) < 2:
            raise FannodeError('%s runs %s: no other version to switch to' % (
                service, 'one version (%s)' % live[0] if live else 'no version'))
        at = live.index(row['current'][0]) if row['current'] and row['current'][0] in live else -1
        if at + 1 < len(live):
            self._config().set(route_key(service), live[at + 1])
            return '%s: unpinned calls go to %s (route %s)' % (service, live[at + 1], live[at + 1])
        self._config().delete(route_key(service))
        return '%s: route cleared: unpinned calls go to the newest, %s' % (service, live[0])

    def close(self) -> None:
        if self.config is not None:
            self.config.close()
            self.config = None
