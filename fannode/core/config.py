"""YAML config files: env substitution, dotted keys, and errors that name file, line and key.

Every ConfigError message is one line: ``{source}:{line}: {key}: {message}``.
"""
from __future__ import annotations

import copy
import difflib
import importlib
import os
import re
import traceback
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml

from fannode.core.limits import MIB, setting
from fannode.exceptions import ConfigError

MISSING: Any = object()

# A config is small and written by hand: these bounds only stop a file that is not (a log
# by mistake, or YAML aliases of aliases that expand to gigabytes from a few hundred bytes).
MAX_FILE_BYTES = setting('FANNODE_CONFIG_MAX_BYTES', 1 * MIB, 1)
MAX_DEPTH = setting('FANNODE_CONFIG_MAX_DEPTH', 64, 1)  # mappings and lists, nested
MAX_VALUES = setting('FANNODE_CONFIG_MAX_VALUES', 100_000, 1)  # once aliases are expanded

# $${ is a literal ${; ${NAME} / ${NAME:-default}; anything else starting with ${ is a mistake.
_REF = re.compile(r'\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^{}]*))?\}|\$\{[^}]*\}?')
_IMPORT_DIR = os.path.dirname(importlib.__file__)


def _one_line(text: str) -> str:
    return re.sub(r'\s*\n\s*', ' ', str(text)).strip()


def _format(source: str, line: int | None, key: str, message: str) -> str:
    where = '%s:%d' % (source, line) if line else source
    return '%s: %s%s' % (where, key + ': ' if key else '', _one_line(message))


def _join(prefix: str, key: Any) -> str:
    return '%s.%s' % (prefix, key) if prefix else str(key)


def _describe(value: Any) -> str:
    if value is None:
        return 'null'
    if isinstance(value, Mapping):
        return 'mapping'
    if isinstance(value, list):
        return 'list'
    text = repr(value)
    return '%s %s' % (type(value).__name__, text if len(text) <= 40 else text[:37] + '...')


def _type_name(t: type) -> str:
    if t in (dict, Mapping, Config):
        return 'mapping'
    return 'null' if t is type(None) else t.__name__


def _type_ok(value: Any, types: tuple) -> bool:
    if isinstance(value, bool):  # bool is an int subclass, but `port: true` is a mistake
        return bool in types or object in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types) or (isinstance(value, dict) and Config in types)


class Config(Mapping):
    """A read-only view of (part of) a config file; `prefix` is its dotted key in the file."""

    def __init__(self, data: Mapping | None = None, source: str = '<config>',
                 lines: dict[str, int] | None = None, prefix: str = ''):
        self._data, self._lines = data if data is not None else {}, lines if lines is not None else {}
        self.source, self.prefix = source, prefix

    def _find(self, key: Any) -> Any:
        if not isinstance(key, str) or key in self._data:
            return self._data.get(key, MISSING)
        value: Any = self._data
        for part in key.split('.'):
            if isinstance(value, dict):
                # non-string keys (`1: x`) are addressed by their str()
                value = value[part] if part in value else next(
                    (v for k, v in value.items() if str(k) == part), MISSING)
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return MISSING
        return value

    def _wrap(self, value: Any, full: str) -> Any:
        if isinstance(value, dict):
            return Config(value, self.source, self._lines, full)
        if isinstance(value, list):
            return [self._wrap(v, _join(full, i)) for i, v in enumerate(value)]
        return value

    def _line(self, full: str) -> int | None:
        while full and full not in self._lines:  # nearest known parent if the key is absent
            full = full.rpartition('.')[0]
        return self._lines.get(full)

    def __getitem__(self, key: Any) -> Any:
        value = self._find(key)
        if value is MISSING:
            raise self.error(key, 'missing')
        return self._wrap(value, _join(self.prefix, key))

    def __contains__(self, key: object) -> bool:
        return self._find(key) is not MISSING

    def __iter__(self) -> Iterator:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return 'Config(%r, source=%r, prefix=%r)' % (self.to_dict(), self.source, self.prefix)

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._find(key)
        return default if value is MISSING else self._wrap(value, _join(self.prefix, key))

    def to_dict(self) -> dict:
        return copy.deepcopy(dict(self._data))

    def error(self, key: Any, message: str) -> ConfigError:
        full = _join(self.prefix, key) if key != '' else self.prefix
        return ConfigError(_format(self.source, self._line(full), full, message))

    def section(self, key: str) -> Config:
        value = self._find(key)
        if value is MISSING or value is None:  # `events:` with nothing under it is an empty section
            value = {}
        if not isinstance(value, dict):
            raise self.error(key, 'expected a mapping, got %s' % _describe(value))
        return Config(value, self.source, self._lines, _join(self.prefix, key))

    def require(self, key: str, types: type | tuple[type, ...], default: Any = MISSING) -> Any:
        value = self._find(key)
        if value is MISSING:
            if default is not MISSING:
                return default
            raise self.error(key, 'missing')
        types = types if isinstance(types, tuple) else (types,)
        if not _type_ok(value, types):
            expected = ' or '.join(_type_name(t) for t in types)
            raise self.error(key, 'expected %s, got %s' % (expected, _describe(value)))
        if type(value) is int and float in types and int not in types:
            return float(value)
        return self._wrap(value, _join(self.prefix, key))

    def check_keys(self, allowed: Iterable[str]) -> None:
        allowed = sorted(set(allowed))
        for key in self._data:
            if key in allowed or str(key) in allowed:
                continue
            message = "unknown key '%s' (expected %s)" % (
                key, 'one of: ' + ', '.join(allowed) if allowed else 'no keys here')
            close = difflib.get_close_matches(str(key), allowed, n=1)
            if close:
                message += "; did you mean '%s'?" % close[0]
            line = self._lines.get(_join(self.prefix, key))
            raise ConfigError(_format(self.source, line, self.prefix, message))

    def create_instance(self, key: str, **extra_kwargs: Any) -> Any:
        """Build the object configured at `key`: 'module:Class' or {class: 'module:Class', **kwargs}."""
        value = self._find(key)
        if isinstance(value, str):
            spec, spec_key, kwargs = value, key, {}
        elif isinstance(value, dict):
            spec_key = '%s.class' % key
            spec = self.require(spec_key, str)
            kwargs = {k: copy.deepcopy(v) for k, v in value.items() if k != 'class'}
        elif value is MISSING:
            raise self.error(key, 'missing')
        else:
            raise self.error(key, "expected 'module:Class' or a mapping with a 'class' key, got %s"
                             % _describe(value))
        for name in extra_kwargs:
            if name in kwargs:  # silently overriding the user's setting would hide a mistake
                raise self.error('%s.%s' % (key, name), 'cannot be set in the config (fannode sets it)')
        try:
            factory = import_object(spec)
        except ImportError as e:
            raise self.error(spec_key, str(e)) from e
        try:
            return factory(**kwargs, **extra_kwargs)
        except TypeError as e:
            if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                raise  # raised inside the constructor: a bug in the code, not in the config
            raise self.error(key, 'cannot create %r: %s' % (spec, e)) from e


def import_object(spec: str) -> Any:
    """Import 'pkg.module:Attr.sub' or 'pkg.module.Attr'; ImportError with a one-line message."""
    module_name, sep, attr = spec.partition(':')
    if not sep:
        module_name, _, attr = spec.rpartition('.')
    if not module_name or not attr:
        raise ImportError("cannot import %r: expected 'module:name' or 'module.name'" % spec)
    try:
        obj = importlib.import_module(module_name)
    except Exception as e:
        missing = isinstance(e, ModuleNotFoundError) and e.name and \
            (module_name + '.').startswith(e.name + '.')
        reason = str(e) if missing else _import_failure(e)
        raise ImportError(_one_line('cannot import %r: %s' % (spec, reason))) from e
    done: list[str] = []
    for part in attr.split('.'):
        owner = repr('%s:%s' % (module_name, '.'.join(done))) if done else 'module %r' % module_name
        obj = getattr(obj, part, MISSING)
        if obj is MISSING:
            raise ImportError('cannot import %r: %s has no attribute %r' % (spec, owner, part))
        done.append(part)
    return obj


def _short_path(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith('..') else rel


def _import_failure(e: Exception) -> str:
    """'SyntaxError in services/greeting.py line 3: invalid syntax', pointing into the user's code."""
    name = type(e).__name__
    if isinstance(e, SyntaxError) and e.filename:
        return '%s in %s line %s: %s' % (name, _short_path(e.filename), e.lineno, e.msg)
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith('<')
              and f.filename != __file__ and not f.filename.startswith(_IMPORT_DIR)]
    if frames:
        return '%s in %s line %s: %s' % (name, _short_path(frames[-1].filename), frames[-1].lineno, e)
    return '%s: %s' % (name, e)


def load_config(path: str | os.PathLike, env: Mapping[str, str] | None = None) -> Config:
    source = os.fspath(path)
    try:
        with open(path, 'rb') as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError('%s: no such file' % source) from None
    except IsADirectoryError:
        raise ConfigError('%s: is a directory, not a file' % source) from None
    except OSError as e:
        raise ConfigError('%s: cannot read: %s' % (source, e.strerror or e)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(_too_big(source))
    try:
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        line = raw.count(b'\n', 0, e.start) + 1
        raise ConfigError('%s:%d: not UTF-8 (byte 0x%02x)' % (source, line, raw[e.start])) from None
    return loads_config(text, source, env)


def _too_big(source: str) -> str:
    return '%s: larger than %d bytes ($FANNODE_CONFIG_MAX_BYTES); is it a config file?' % (source, MAX_FILE_BYTES)


def loads_config(text: str, source: str = '<string>', env: Mapping[str, str] | None = None) -> Config:
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError(_too_big(source))
    try:
        loader = _Loader(text)  # the reader checks characters here already
        node = loader.get_single_node()
        # measured before anything is built from it
        data = None if node is None or not _measure(node, 1, {}, source) else loader.construct_document(node)
        if node is None or data is None:  # empty file, only comments, or a bare '---'
            return Config({}, source)
        if not isinstance(data, dict):
            raise ConfigError(_format(source, node.start_mark.line + 1, '',
                                      'top level must be a mapping, got %s' % _describe(data)))
        walker = _Walker(loader, source, os.environ if env is None else env)
        return Config(walker.walk(node, data), source, walker.lines)
    except yaml.YAMLError as e:
        raise ConfigError(_yaml_error(e, text, source)) from None


def _yaml_error(e: yaml.YAMLError, text: str, source: str) -> str:
    if isinstance(e, yaml.reader.ReaderError):
        line = text.count('\n', 0, e.position) + 1
        return _format(source, line, '', 'bad YAML: unacceptable character #x%04x' % e.character)
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        message = e.problem or e.context
        if e.context and e.problem and not e.context.startswith('while'):
            message = '%s, %s' % (e.context, e.problem)  # e.g. 'expected a single document ...'
        return _format(source, mark.line + 1 if mark else None, '', 'bad YAML: %s' % message)
    return _format(source, None, '', 'bad YAML: %s' % e)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses nesting beyond MAX_DEPTH while composing (it recurses), and
    says which value it could not make (an int of 5,000 digits, a 13th month) by line."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, 'nested deeper than %d levels' % MAX_DEPTH,
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:
            text = node.value if isinstance(node.value, str) else node.tag
            raise yaml.constructor.ConstructorError(None, None, "cannot read '%s': %s" % (
                text if len(text) <= 40 else text[:37] + '...', e), node.start_mark) from None


def _measure(node: yaml.Node, level: int, seen: dict[int, tuple[int, int]], source: str) -> tuple[int, int]:
    """(values, depth) of `node` with its aliases and merge keys expanded, as the walker
    and the constructor will: shared nodes are counted once per use, but measured once."""
    line = node.start_mark.line + 1
    if id(node) in seen:  # an alias: earlier in the file, so measured already (or an ancestor)
        if not seen[id(node)][0]:
            raise ConfigError(_format(source, line, '', 'bad YAML: an alias refers to a value that contains it'))
        return seen[id(node)]  # not checked here: the line shown is where the alias is used
    seen[id(node)] = (0, 0)
    children = node.value if isinstance(node, yaml.SequenceNode) else [] if isinstance(
        node, yaml.ScalarNode) else [n for pair in node.value for n in pair]
    sizes = [_measure(child, level + 1, seen, source) for child in children]
    count, depth = 1 + sum(c for c, _ in sizes), 1 + max((d for _, d in sizes), default=0)
    if count > MAX_VALUES:
        raise ConfigError(_format(source, line, '', 'more than %d values once YAML aliases are expanded '
                                  '($FANNODE_CONFIG_MAX_VALUES); aliases of aliases multiply' % MAX_VALUES))
    if level + depth - 1 > MAX_DEPTH:
        raise ConfigError(_format(source, line, '', 'nested deeper than %d levels once YAML aliases '
                                  'are expanded' % MAX_DEPTH))
    seen[id(node)] = (count, depth)
    return count, depth


class _Walker:
    """Records the line of every key and substitutes ${VAR} in string values. It builds new
    containers, so a value shared through a YAML alias is never substituted twice."""

    def __init__(self, loader: yaml.SafeLoader, source: str, env: Mapping[str, str]):
        self.loader, self.source, self.env = loader, source, env
        self.lines: dict[str, int] = {}

    def walk(self, node: yaml.Node, value: Any, path: str = '') -> Any:
        if isinstance(node, yaml.MappingNode) and isinstance(value, dict):
            pairs = {}  # a repeated key: the last one wins, as in the constructed dict
            for key_node, value_node in node.value:
                pairs[self.loader.construct_object(key_node, deep=True)] = (key_node, value_node)
            out = {}
            for key, (key_node, value_node) in pairs.items():
                self.lines[_join(path, key)] = key_node.start_mark.line + 1
                out[key] = self.walk(value_node, value[key], _join(path, key))
            return out
        if isinstance(node, yaml.SequenceNode) and isinstance(value, list):
            for i, item_node in enumerate(node.value):
                self.lines[_join(path, i)] = item_node.start_mark.line + 1
            return [self.walk(n, v, _join(path, i)) for i, (n, v) in enumerate(zip(node.value, value))]
        if isinstance(node, yaml.ScalarNode) and isinstance(value, str) and '${' in value:
            return self.substitute(node, value, path)
        return value

    def substitute(self, node: yaml.ScalarNode, text: str, key: str) -> Any:
        line = node.start_mark.line + 1

        def replace(m: re.Match) -> str:
            if m.group(0) == '$${':
                return '${'
            name, default = m.group(1), m.group(2)
            if name is None:
                raise ConfigError(_format(self.source, line, key, "bad environment reference '%s' "
                                          "(expected ${NAME} or ${NAME:-default})" % m.group(0)))
            value = self.env.get(name)
            if not value and default is not None:  # like sh: the default also replaces ''
                return default
            if value is None:
                raise ConfigError(_format(self.source, line, key,
                                          'environment variable %s is not set' % name))
            return value

        result = _REF.sub(replace, text)
        whole = _REF.fullmatch(text)
        if whole and whole.group(1) and node.style is None:
            # `port: ${PORT:-4080}` should be an int; quoting the reference keeps it a string
            tag = self.loader.resolve(yaml.ScalarNode, result, (True, False))
            try:
                return self.loader.construct_object(yaml.ScalarNode(tag, result))
            except (ValueError, yaml.YAMLError):
                return result
        return result
