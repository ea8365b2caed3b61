"""Environment files: `.env` beside node.yml, `env_file:` (top level and per block) and
`fannode up --env-file`, and the layers they make with node.yml's `env:`.

The syntax is docker compose's, read by python-dotenv (a maintained parser of exactly
this format: `export`, single and double quotes, escapes in double quotes, values over
several lines, `#` comments) rather than a hand-written one. fannode adds the checks
(every bad line is `FILE:LINE: ...`) and the expansion: `${VAR}` and `${VAR:-default}`
in unquoted and double-quoted values, from the lines above, then the files before, then
the environment; single-quoted values stay as written.

What a process gets, lowest first: the environment `fannode up` runs in, `.env`, the
`--env-file` files, top-level `env_file:`, top-level `env:`, the block's `env_file:`,
the block's `env:` (fannode.node.launch adds its own FANNODE_* variables on top).
"""
from __future__ import annotations

import io
import os
import re
from collections import ChainMap
from collections.abc import Iterable, Mapping

from dotenv.parser import parse_stream
from dotenv.variables import parse_variables

from fannode.core.config import MAX_FILE_BYTES, Config
from fannode.exceptions import ConfigError

DEFAULT = '.env'
NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_.-]*')
# `KEY='...'`: compose does not expand ${VAR} in single quotes
_SINGLE = re.compile(r"""\s*(?:export\s+)?(?:'[^']*'|"[^"]*"|[^=\s#]+)\s*=\s*'""")
SECRET = re.compile(r'PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE', re.IGNORECASE)

_given: tuple[str, ...] = ()  # `fannode up --env-file`: read again on every reload of node.yml

Layers = tuple[dict[str, str], dict[str, str]]  # values, and where each came from


def use(files: Iterable[str]) -> None:
    """The --env-file files of this `fannode up`, for every load of its node.yml."""
    global _given
    _given = tuple(os.path.abspath(f) for f in files)


def read(path: str, env: Mapping[str, str], label: str | None = None) -> dict[str, str]:
    """One file's KEY=value lines; `${VAR}` sees the lines above, then `env`."""
    label = label or path
    text = read_text(path, label)
    values: dict[str, str] = {}
    scope = ChainMap(values, env)  # type: ignore[arg-type]
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            first = binding.original.string.splitlines()[0].strip() if binding.original.string.strip() else ''
            raise ConfigError('%s:%d: cannot read %r: expected KEY=value (is a quote left open?)'
                              % (label, line, first[:60]))
        key = binding.key
        if key is None:  # a comment or a blank line
            continue
        if not NAME.fullmatch(key):
            raise ConfigError('%s:%d: bad variable name %r: expected letters, digits, _ . - '
                              '(not starting with a digit)' % (label, line, key))
        value = binding.value
        if value is None:  # `KEY` alone: its value in the environment, as compose does
            if key in env:
                values[key] = env[key]
            continue
        if not _SINGLE.match(binding.original.string):
            value = ''.join(atom.resolve(scope) for atom in parse_variables(value))
        values[key] = value
    return values


def read_text(path: str, label: str, what: str = 'an environment file') -> str:
    """A small UTF-8 text file read whole (a .env, a Procfile); every problem a ConfigError
    naming `label` (and the line, for bytes that are not UTF-8)."""
    try:
        with open(path, 'rb') as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError('%s: no such file' % label) from None
    except OSError as e:
        raise ConfigError('%s: cannot read: %s' % (label, e.strerror or e)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError('%s: larger than %d bytes; is it %s?' % (label, MAX_FILE_BYTES, what))
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        raise ConfigError('%s:%d: not UTF-8' % (label, raw.count(b'\n', 0, e.start) + 1)) from None


def project(base_dir: str, env: Mapping[str, str], given: Iterable[str] | None = None) -> Layers:
    """`.env` beside node.yml (when there is one), then the --env-file files, later wins."""
    values: dict[str, str] = {}
    origin: dict[str, str] = {}
    dotenv = os.path.join(base_dir, DEFAULT)
    files = ([dotenv] if os.path.isfile(dotenv) else []) + list(_given if given is None else given)
    for path in files:
        label = os.path.relpath(path, base_dir) if path.startswith(base_dir + os.sep) else path
        _add(values, origin, read(path, ChainMap(values, env), label), label)  # type: ignore[arg-type]
    return values, origin


def interpolation(env: Mapping[str, str], project_values: Mapping[str, str]) -> Mapping[str, str]:
    """What `${VAR}` in node.yml sees: the environment first, then .env and --env-file
    (docker compose's rule: `PORT=1 fannode up` overrides PORT in .env)."""
    return ChainMap(env, project_values)  # type: ignore[arg-type]


def layer(owner: Config, base: Layers, own: Mapping[str, str], base_dir: str, where: str) -> Layers:
    """`base`, then the files of owner's `env_file:`, then its `env:` (`own`)."""
    values, origin = dict(base[0]), dict(base[1])
    for path in _files(owner, base_dir):
        label = os.path.relpath(path, base_dir) if path.startswith(base_dir + os.sep) else path
        _add(values, origin, read(path, ChainMap(values, os.environ), label), label)
    _add(values, origin, dict(own), where)
    return values, origin


def _files(owner: Config, base_dir: str) -> list[str]:
    value = owner.require('env_file', (str, list), [])
    keys = ['env_file'] if isinstance(value, str) else ['env_file.%d' % i for i in range(len(value))]
    files = []
    for key in keys:
        name = owner.require(key, str)
        if not name:
            raise owner.error(key, 'must not be empty')
        path = os.path.abspath(os.path.join(base_dir, os.path.expanduser(name)))
        if not os.path.isfile(path):
            raise owner.error(key, 'no such file: %s' % path)
        files.append(path)
    return files


def _add(values: dict[str, str], origin: dict[str, str], new: Mapping[str, str], label: str) -> None:
    values.update(new)
    origin.update(dict.fromkeys(new, label))


# ---------------------------------------------------------------- --show-env


def shown(env: Mapping[str, str], origin: Mapping[str, str], reveal: bool) -> list[dict[str, object]]:
    """A block's variables as `fannode up --check --show-env` prints them: sorted, with
    where each comes from; secrets (by name, and passwords in URLs) hidden unless `reveal`."""
    from fannode.core.text import redacted
    rows: list[dict[str, object]] = []
    for name in sorted(env):
        value = env[name]
        hidden = not reveal and (bool(SECRET.search(name)) or redacted(value) != value)
        if hidden:
            value = '***' if SECRET.search(name) else redacted(value)
        rows.append({'name': name, 'value': value, 'source': origin.get(name, 'node'), 'redacted': hidden})
    return rows
