"""A Procfile (foreman, honcho, Heroku) read as node.yml: each `name: command` line a
block of one process, on the node's own hub, so ps, scale, restart and live edits work
as they do for node.yml.

Like foreman, each process gets PORT: the base (`$PORT` where `fannode up` runs, or in
.env; 5000 without) plus 100 per line above it, plus its worker index - 1 (web.1 5000,
web.2 5001, worker.1 5100). A command with shell syntax (`$PORT`, pipes, `&&`) runs
under `sh -c`, as foreman runs every command; one without is run directly, so
`web: fannode instance --config web.yml` is a service block like in node.yml.

The format is four lines of regular expression; a library (honcho) would bring a whole
process manager along for them.
"""
from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping

from fannode.core.config import Config
from fannode.exceptions import ConfigError
from fannode.node.envfiles import read_text

LINE = re.compile(r'([A-Za-z0-9_.-]+)\s*:\s*(.*)')
SHELL = re.compile(r'[$|&;<>()`*?~\\]|^\s*[A-Za-z_][A-Za-z0-9_]*=')
BASE_PORT = 5000
STEP = 100


def is_procfile(path: str) -> bool:
    """`Procfile`, `Procfile.dev`, `web.procfile`: the names foreman and honcho users give them."""
    name = os.path.basename(path)
    return name.startswith('Procfile') or name.lower().endswith('.procfile')


def read(path: str, label: str) -> tuple[Config, dict[str, int]]:
    """The Procfile as node.yml's data (with the line of each block), and each block's
    place in it (0, 1, 2...) for its PORT."""
    text = read_text(path, label, 'a Procfile')
    blocks: dict[str, dict[str, object]] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        match = LINE.fullmatch(line.strip())
        if match is None:
            raise ConfigError('%s:%d: expected `name: command`, got %r' % (label, number, line.strip()[:80]))
        name, command = match.groups()
        if not command.strip():
            raise ConfigError('%s:%d: %s: the command is empty' % (label, number, name))
        if name in blocks:
            raise ConfigError('%s:%d: %s: already on line %d' % (label, number, name, lines['instances.' + name]))
        blocks[name] = {'command': _argv(command)}
        lines['instances.%s' % name] = lines['instances.%s.command' % name] = number
    if not blocks:
        raise ConfigError('%s: no processes (expected lines `name: command`)' % label)
    return Config({'instances': blocks}, label, lines), {name: i for i, name in enumerate(blocks)}


def _argv(command: str) -> str | list[str]:
    try:
        shlex.split(command)
    except ValueError:  # an open quote: sh says what is wrong when it runs
        return ['sh', '-c', command]
    return ['sh', '-c', command] if SHELL.search(command) else command


def base_port(env: Mapping[str, str], label: str) -> int:
    value = env.get('PORT', '').strip()
    if not value:
        return BASE_PORT
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ConfigError('%s: $PORT is %r: expected a port number, the first of the ports the '
                          'processes get' % (label, value))
    return int(value)


def ports(places: Mapping[str, int], base: int, label: str = 'Procfile') -> dict[str, int]:
    found = {name: base + STEP * place for name, place in places.items()}
    last = max(found, key=found.__getitem__)
    if found[last] > 65535:
        raise ConfigError('%s: $PORT is %d: %s would get port %d (%d + %d per line above it), past 65535; '
                          'set a lower $PORT' % (label, base, last, found[last], base, STEP))
    return found
