"""What node.yml says about one block (InstanceSpec) and one socket (SocketSpec), as read
by fannode.node.blockread; fannode.node.topology holds the whole file."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from fannode.core.limits import setting
from fannode.node.readycheck import ReadyCheck

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
    def is_service(self) -> bool:
        """Runs `fannode instance ...` (or `python -m fannode[.cli] instance ...`)."""
        return (self.fannode_args or ('',))[0] == 'instance'

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

