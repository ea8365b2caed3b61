"""Finding instances for the commands that act on one or each of them."""
from __future__ import annotations

from fannode.discovery import InstanceInfo, Registry
from fannode.exceptions import UnknownService, UsageError


def short(info: InstanceInfo) -> str:
    """The id prefix instances show in their log lines."""
    return info.id[:8]


def instances_of(registry: Registry, service: str) -> list[InstanceInfo]:
    found = registry.services()
    if not found.get(service):
        known = ', '.join(sorted(found)) or 'none'
        raise UnknownService("no instance of service '%s' is registered (services: %s)" % (service, known))
    return found[service]


def find_instance(registry: Registry, name: str) -> InstanceInfo:
    """The instance whose id starts with `name`, or the only instance of service `name`."""
    found = registry.services()
    if name in found:
        instances = found[name]
        if len(instances) == 1:
            return instances[0]
        raise UsageError('%s has %d instances; name one: %s'
                         % (name, len(instances), ', '.join(short(i) for i in instances)))
    everyone = {i.id: i for instances in found.values() for i in instances}
    matches = [i for id_, i in everyone.items() if id_.startswith(name.lower())] if name else []
    if not matches:
        raise UnknownService("no instance or service '%s' (services: %s; `fannode discover --instances` "
                             "lists the instance ids)" % (name, ', '.join(sorted(found)) or 'none'))
    if len(matches) > 1:
        raise UsageError("instance id prefix '%s' matches %d instances: %s"
                         % (name, len(matches), ', '.join(short(i) for i in matches)))
    return matches[0]
