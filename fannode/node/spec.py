"""What node.yml says about one block (InstanceSpec) and one socket (SocketSpec), as read
by fannode.node.blockread; fannode.node.topology holds the whole file."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from fannode.core.limits import setting
from fannode.node.logconf import LogSpec
from fannode.node.livecheck import Liveness
from fannode.node.readycheck import ReadyCheck
from fannode.node.resources import Limits
from fannode.node.reloadkey import SourceWatch
from fannode.node.rolloutspec import RolloutSpec, rolling

# A name prefixes every line its processes print: a long one is a mistake (or an attack
# through the control socket, which checks names against this too).
NAME_MAX = setting('FANNODE_MAX_NAME', 64, low=1)
NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')


@dataclass(frozen=True)
class SocketSpec:
    name: str
    host: str = '0.0.0.0'
    port: int = 0


@dataclass(frozen=True)
class InstanceSpec:
    name: str
    command: str
    argv: tuple[str, ...]
    numprocesses: int = 1
    sockets: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # effective: node env + block env, sorted
    cwd: str | None = None
    stop_timeout: float = 10.0
    restart: str = 'always'
    max_restarts: int = 10
    depends_on: tuple[str, ...] = ()
    ready: ReadyCheck = ReadyCheck('started')
    # (block, service): hard dependencies of its service config that other blocks serve
    implied: tuple[tuple[str, str], ...] = ()
    reload: SourceWatch | None = None  # sources that restart it when they change
    logs: LogSpec | None = None  # its output to files (fannode.node.logfiles)
    version: str = ''  # FANNODE_VERSION of its processes
    rollout: RolloutSpec | None = None  # None: rolling when readiness is seen per process
    liveness: Liveness | None = None  # restarts a wedged process (fannode.node.liveness)
    limits: Limits = Limits()  # memory, cpu, pids, nofile (fannode.node.limitwatch)
    # (block, condition, restart with it) for each of depends_on (fannode.node.dependson)
    conditions: tuple[tuple[str, str, bool], ...] = ()
    preload: bool = True  # `fannode instance` forked from a template (fannode.node.preload)
    port: int | None = None  # a Procfile's: PORT is this + worker index - 1 (fannode.node.procfile)
    env_from: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # variable → its file or key
    line: int = field(default=0, compare=False)  # moving a block in the file changes nothing

    @property
    def fannode_args(self) -> tuple[str, ...] | None:
        """The arguments after `fannode` (or `python -m fannode[.cli]`); None for other commands."""
        argv = self.argv
        if os.path.basename(argv[0]) == 'fannode':
            return argv[1:]
        if (len(argv) >= 3 and os.path.basename(argv[0]).startswith('python')
                and argv[1] == '-m' and argv[2] in ('fannode', 'fannode.cli')):
            return argv[3:]
        return None

    @property
    def rolls(self) -> bool:
        """A change of it replaces its processes one at a time (fannode.node.rollout)."""
        return rolling(self.rollout, self.numprocesses, self.ready.kind, self.port)

    @property
    def is_service(self) -> bool:
        """Runs `fannode instance ...` (or `python -m fannode[.cli] instance ...`)."""
        return (self.fannode_args or ('',))[0] == 'instance'

    @property
    def preloads(self) -> bool:
        """Its processes are forked from a template that imported the service once."""
        return self.preload and self.is_service and '--reload' not in self.argv

    @property
    def runs_fannode(self) -> bool:
        """Its processes write fannode's JSON records on stderr."""
        return self.fannode_args is not None

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def after(self) -> tuple[str, ...]:
        """The blocks it starts after: its depends_on and those its hard dependencies run on."""
        return tuple(dict.fromkeys(self.depends_on + tuple(block for block, _ in self.implied)))

