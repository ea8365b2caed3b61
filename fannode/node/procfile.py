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

from fannode.core.config import MAX_FILE_BYTES, Config
from fannode.exceptions import ConfigError

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
    text = _text(path, label)
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


def ports(places: Mapping[str, int], base: int) -> dict[str, int]:
    return {name: base + STEP * place for name, place in places.items()}


def _text(path: str, label: str) -> str:
    try:
        with open(path, 'rb') as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError('%s: no such file' % label) from None
    except OSError as e:
        raise ConfigError('%s: cannot read: %s' % (label, e.strerror or e)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError('%s: larger than %d bytes; is it a Procfile?' % (label, MAX_FILE_BYTES))
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        raise ConfigError('%s:%d: not UTF-8' % (label, raw.count(b'\n', 0, e.start) + 1)) from None
