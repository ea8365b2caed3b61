"""What changed between two versions of node.yml, and what the node does about it: a
block restarted, scaled or updated in place, added or removed; changes to the node
itself (registry, events, sockets in use) are reported and not applied."""
from __future__ import annotations

from dataclasses import dataclass, field

from fannode.core.text import redacted
from fannode.node.topology import Topology

_RESTART_FIELDS = ('command', 'env', 'cwd', 'sockets', 'stop_timeout', 'version',
                   'limits', 'port', 'preload')  # argv follows command; port: a Procfile's PORT
_IN_PLACE_FIELDS = ('restart', 'max_restarts', 'ready', 'depends_on', 'implied', 'logs', 'reload',
                    'rollout', 'liveness', 'conditions')
_LABELS = {'implied': 'hard dependencies',  # implied: from the block's service config
           'conditions': 'depends_on'}  # its conditions: said once with it


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    scaled: dict[str, int] = field(default_factory=dict)
    updated: list[str] = field(default_factory=list)
    node: list[str] = field(default_factory=list)
    rolling: list[str] = field(default_factory=list)  # replaced one process at a time (node.rollout)
    # for describe(): name → 'command, env changed'; name → the count before scaling
    reasons: dict[str, str] = field(default_factory=dict, repr=False)
    was: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.restarted or self.rolling or self.scaled
                    or self.updated or self.node)

    def describe(self) -> list[str]:
        lines = ['%s: added' % n for n in self.added]
        lines += ['%s: removed' % n for n in self.removed]
        lines += ['%s: restarted (%s)' % (n, self.reasons.get(n, 'changed')) for n in self.restarted]
        lines += ['%s: rolling replace (%s)' % (n, self.reasons.get(n, 'changed')) for n in self.rolling]
        lines += ['%s: %s → %d processes' % (n, self.was.get(n, '?'), c) for n, c in self.scaled.items()]
        lines += ['%s: updated (%s)' % (n, self.reasons.get(n, 'changed')) for n in self.updated]
        return lines  # node reasons are not applied: callers report them apart


def diff(old: Topology, new: Topology) -> Changes:
    changes = Changes()
    changes.added = [n for n in new.instances if n not in old.instances]
    changes.removed = [n for n in old.instances if n not in new.instances]
    for name, spec in new.instances.items():
        before = old.instances.get(name)
        if before is None:
            continue
        changed = [f for f in _RESTART_FIELDS if getattr(before, f) != getattr(spec, f)]
        if changed:  # the restart starts the new count too
            (changes.rolling if spec.rolls and before.numprocesses else changes.restarted).append(name)
            changes.reasons[name] = '%s changed' % ', '.join(changed)
            continue
        if before.numprocesses != spec.numprocesses:
            changes.scaled[name] = spec.numprocesses
            changes.was[name] = before.numprocesses
        in_place = [f for f in _IN_PLACE_FIELDS if getattr(before, f) != getattr(spec, f)]
        if in_place:  # also when scaled: the scaled processes follow the new options
            changes.updated.append(name)
            changes.reasons[name] = '%s changed' % ', '.join(dict.fromkeys(_LABELS.get(f, f) for f in in_place))
    for key in ('registry', 'events'):
        if getattr(old, key) != getattr(new, key):
            changes.node.append('%s changed: %s → %s' % (key, redacted(getattr(old, key)), redacted(getattr(new, key))))
    if old.metrics != new.metrics:  # its server is bound once, when the node starts
        changes.node.append('metrics changed: %s → %s' % tuple(
            '%s:%d every %gs' % (m.host, m.port, m.interval) if m else 'off' for m in (old.metrics, new.metrics)))
    in_use = {s for spec in old.instances.values() for s in spec.sockets}
    for name, sock in old.sockets.items():
        now = new.sockets.get(name)
        if now is None and name in in_use:
            changes.node.append('socket %s removed while in use' % name)
        elif now is not None and (now.host, now.port) != (sock.host, sock.port):
            changes.node.append('socket %s changed: %s:%d → %s:%d'
                                % (name, sock.host, sock.port, now.host, now.port))
    return changes
