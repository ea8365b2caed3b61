"""How rows and log records look in the tables: each column's (text, Rich style).
Compared between refreshes, so only rows whose cells changed are drawn again."""
from __future__ import annotations

import time
from typing import Any

from fannode.core.text import visible
from fannode.tui.rows import Row
from fannode.tui.table import Cell

STATE_STYLES = {
    'running': 'green', 'ready': 'green', 'starting': 'yellow', 'waiting': 'yellow', 'backoff': 'yellow',
    'degraded': 'yellow', 'stopping': 'dim', 'stopped': 'dim', 'unresponsive': 'bold red',
    'error': 'bold red', 'failed': 'bold red', 'not ready': 'bold yellow', 'completed': 'green',
    'rolling out': 'cyan',
}
BREAKER_STYLES = {'open': 'bold red', 'half-open': 'yellow'}
LEVEL_STYLES = {'DEBUG': 'dim', 'INFO': '', 'WARNING': 'yellow', 'ERROR': 'bold red', 'CRITICAL': 'bold white on red'}


def num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return '-'
    if abs(value) >= 100:
        return '%.0f' % value
    return '%.*f' % (digits, value)


def uptime(seconds: float | None) -> str:
    if seconds is None:
        return '-'
    s = int(seconds)
    if s < 60:
        return '%ds' % s
    if s < 3600:
        return '%dm%02ds' % divmod(s, 60)
    if s < 86400:
        return '%dh%02dm' % (s // 3600, s % 3600 // 60)
    return '%dd%02dh' % (s // 86400, s % 86400 // 3600)


def deps(row: Row) -> Cell:
    """'Store ✗ Mailer ✗': its dependencies with no ready instance; red when a hard one."""
    text = ' '.join('%s ✗' % visible(service) for service, _ in row.missing)
    return text, 'bold red' if any(hard for _, hard in row.missing) else 'yellow' if text else ''


def breaker_cell(row: Row) -> Cell:
    """'Mailer open': the breakers of its calls that are not closed, by service."""
    text = ', '.join('%s %s' % (visible(service), state) for service, state in row.breakers)
    styles = [BREAKER_STYLES.get(state, 'yellow') for _, state in row.breakers]
    return text, 'bold red' if 'bold red' in styles else styles[0] if styles else ''


def cells(row: Row) -> dict[str, Cell]:
    """A row of the main table."""
    group = row.is_group
    name = row.name if group else '  ' + row.name
    if row.kind == 'block':
        name = '%s (node)' % row.name
    return {
        'name': (name, 'bold' if group else ''),
        'count': (row.count, 'bold' if group else ''),
        'pid': (str(row.pid) if row.pid else '', ''),
        'host': (row.host, 'dim'),
        'state': (row.state, STATE_STYLES.get(row.state, '')),
        'deps': deps(row),
        'breakers': breaker_cell(row),
        'version': (row.version, 'bold' if group else '' if row.serving else 'dim'),
        'uptime': ('' if group else uptime(row.uptime), ''),
        'restarts': ('' if row.restarts is None else str(row.restarts), 'yellow' if row.restarts else ''),
        'cpu': (num(row.cpu), ''),
        'rss': (num(row.rss / 1048576 if row.rss is not None else None), ''),
        'rps': (num(row.rps), 'bold' if row.rps else ''),
        'errors': ('-' if row.errors is None else str(row.errors), 'bold red' if row.errors else ''),
        'p99': (num(row.p99), ''),
        'eps': (num(row.eps), ''),
        'hps': (num(row.hps), ''),
    }


def clock(ts: Any) -> str:
    try:
        return time.strftime('%H:%M:%S', time.localtime(ts)) + ('%.3f' % (ts % 1))[1:]
    except (TypeError, ValueError, OverflowError, OSError):  # not a time
        return ''


def who(record: dict) -> str:
    return visible(str(record.get('instance') or record.get('service') or record.get('pid') or ''))


def log_cells(record: dict) -> dict[str, Cell]:
    """A log record (or a span record, said in one line) as the log tables show it."""
    level = visible(str(record.get('level', '')))
    msg = str(record.get('msg', ''))
    if record.get('kind') == 'span':
        msg = '%s %s %s in %s ms' % (record.get('type', ''), record.get('name', ''), record.get('status', ''),
                                     num(record.get('duration_ms')))
    return {'time': (clock(record.get('ts')), ''), 'level': (level, LEVEL_STYLES.get(level, '')),
            'who': (who(record), 'cyan'), 'trace': (visible(str(record.get('trace') or '')[:8]), 'underline magenta'),
            'msg': (visible(msg.replace('\n', ' ⏎ ')), '')}


KIND_STYLES = {
    'failed': 'bold red', 'edit-refused': 'bold red', 'not-started': 'bold red', 'backoff': 'yellow',
    'exited': 'yellow', 'liveness': 'yellow', 'limit': 'yellow', 'restarted': 'yellow', 'rollout': 'cyan',
    'edit-applied': 'cyan', 'scaled': 'cyan', 'reload': 'cyan', 'ready': 'green', 'started': 'dim',
    'stopped': 'dim', 'stopping': 'bold',
}


def timeline_cells(entry: dict[str, Any]) -> dict[str, Cell]:
    """A node timeline entry (fannode.node.timeline) as the timeline tables show it."""
    kind = str(entry.get('kind', ''))
    style = KIND_STYLES.get(kind, '')
    return {'time': (clock(entry.get('time')), 'dim'), 'block': (visible(str(entry.get('block') or '-')), 'cyan'),
            'kind': (kind, style), 'text': (visible(str(entry.get('text', ''))), style if 'red' in style else '')}
