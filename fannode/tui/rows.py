"""What `fannode top` shows, immutable, and how it is computed from what the cluster
says: discovery, each instance's get_metrics reply, the node's ps. No I/O here, so tests
feed it fixed data; fannode.tui.source does the asking."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from fannode.calls.breaker import open_endpoints
from fannode.core.dependencies import announced
from fannode.core.interface import BUILTINS
from fannode.exceptions import ConnectionLost, Timeout
from fannode.tui.versions import versioned, with_versions

LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')
STATE_ORDER = ('failed', 'backoff', 'unresponsive', 'error', 'not ready', 'starting', 'waiting', 'stopping',
               'degraded', 'ready', 'running', 'stopped')
BREAKER_ORDER = ('open', 'half-open')  # worst first; then 'n/m open' (some endpoints only)


# -- what the app shows: immutable ------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table: a service or node block (`kind` 'service' or 'block',
    figures summed over its instances) or one of their instances ('instance')."""

    key: str
    kind: str
    name: str
    group: str = ''                 # the key of the service/block row an instance belongs to
    count: str = ''                 # 'running/desired' on group rows
    pid: int | None = None
    host: str = ''
    state: str = ''
    uptime: float | None = None
    restarts: int | None = None
    cpu: float | None = None        # percent of one core
    rss: int | None = None          # bytes
    rps: float | None = None        # RPC calls per second
    errors: int | None = None       # failed calls, event handlings, HTTP 5xx since start
    p99: float | None = None        # ms, RPC
    eps: float | None = None        # events handled per second (when the instance reports them)
    hps: float | None = None        # HTTP requests per second (likewise)
    service: str = ''               # the service, for service and instance rows
    blocks: tuple[str, ...] = ()    # the node's blocks behind the row
    instance: str = ''              # the instance id, when discovery lists it
    missing: tuple[tuple[str, bool], ...] = ()   # (dependency with no ready instance, hard?)
    breakers: tuple[tuple[str, str], ...] = ()   # (dependency, breaker state) of those not closed
    version: str = ''               # an instance's version; a service's: where unpinned calls go
    serving: bool = True            # an instance unpinned calls reach (its version is the current one)

    @property
    def is_group(self) -> bool:
        return self.kind != 'instance'


@dataclasses.dataclass(frozen=True)
class Snapshot:
    rows: tuple[Row, ...]
    registry: str
    node: str = ''                  # 'node.yml (pid 123)', or '' when no node runs it
    node_file: str = 'node.yml'
    problems: tuple[str, ...] = ()  # registry or node trouble, one line each
    taken: float = 0.0              # time.time()
    services: int = 0
    instances: int = 0


@dataclasses.dataclass(frozen=True)
class Status:
    text: str
    ok: bool = True


@dataclasses.dataclass(frozen=True)
class LogBatch:
    follow: int                     # which follow_logs() request these answer
    records: tuple[dict, ...]
    error: str = ''


@dataclasses.dataclass(frozen=True)
class TraceResult:
    trace_id: str
    records: tuple[dict, ...]
    error: str = ''


# -- figures from get_metrics -----------------------------------------------------

@dataclasses.dataclass
class Figures:
    calls: int = 0
    errors: int = 0
    p99: float | None = None
    events: int | None = None
    http: int | None = None
    cpu: float | None = None
    rss: int | None = None
    uptime: float | None = None


def _belongs(name: str, service: str) -> bool:
    """'Greeting.greet' is Greeting's; a name without a service ('GET /greet') is the
    instance's, so every service it serves."""
    owner, dot, _ = name.partition('.')
    return not dot or ' ' in owner or owner == service


def figures(metrics: dict[str, Any], service: str) -> Figures:
    """Counters of `service` in one instance's get_metrics reply; 'event', 'http' and
    'custom' sections are optional (older instances have only 'rpc' and 'process')."""
    f = Figures()
    for name, stats in (metrics.get('rpc') or {}).items():
        owner, _, method = name.rpartition('.')
        if owner != service or method in BUILTINS or not isinstance(stats, dict):
            continue
        f.calls += stats.get('calls', 0)
        f.errors += stats.get('errors', 0)
        if stats.get('calls'):
            f.p99 = max(f.p99 or 0.0, stats.get('p99_ms', 0.0))
    for kind in ('event', 'http'):
        section = metrics.get(kind)
        if not isinstance(section, dict):
            continue
        mine = [s for name, s in section.items() if isinstance(s, dict) and _belongs(name, service)]
        setattr(f, 'events' if kind == 'event' else 'http', sum(s.get('calls', 0) for s in mine))
        f.errors += sum(s.get('errors', 0) for s in mine)
    process = metrics.get('process') or {}
    f.cpu, f.rss, f.uptime = process.get('cpu_percent'), process.get('rss'), process.get('uptime')
    return f


def missing(info: Any) -> tuple[tuple[str, bool], ...]:
    """(service, hard?) of the declared dependencies an instance announces as missing
    (meta 'missing' and 'dependencies'; instances that declare none announce neither)."""
    hard, _, found = announced(info)
    return tuple((s, s in hard) for s in found)


def breakers(metrics: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """(service, state) of the breakers in a get_metrics reply that are not closed: the
    service's state, or 'n/m open' when only some of its endpoints are open."""
    section = metrics.get('breakers')
    section = section if isinstance(section, dict) else {}
    found = []
    for service, breaker in sorted((k, v) for k, v in section.items() if isinstance(k, str)):
        if not isinstance(breaker, dict):
            continue
        if breaker.get('state') in BREAKER_ORDER:
            found.append((service, str(breaker['state'])))
            continue
        bad, endpoints = open_endpoints(breaker)
        if bad:
            found.append((service, '%d/%d open' % (bad, endpoints)))
    return tuple(found)


def _merged_missing(rows: list[Row]) -> tuple[tuple[str, bool], ...]:
    hard: dict[str, bool] = {}
    for row in rows:
        for service, is_hard in row.missing:
            hard[service] = hard.get(service, False) or is_hard
    return tuple(hard.items())


def _merged_breakers(rows: list[Row]) -> tuple[tuple[str, str], ...]:
    """The worst state of each dependency's breakers over a service's instances."""
    def rank(state: str) -> int:
        return BREAKER_ORDER.index(state) if state in BREAKER_ORDER else len(BREAKER_ORDER)
    worst: dict[str, str] = {}
    for row in rows:
        for service, state in row.breakers:
            if service not in worst or rank(state) < rank(worst[service]):
                worst[service] = state
    return tuple(sorted(worst.items()))


class Rates:
    """Per-second rates from counters seen at successive polls."""

    def __init__(self) -> None:
        self.seen: dict[Any, tuple[float, float]] = {}
        self.touched: set[Any] = set()

    def rate(self, key: Any, count: float | None, now: float) -> float | None:
        if count is None:
            return None
        self.touched.add(key)
        before = self.seen.get(key)
        self.seen[key] = (count, now)
        if before is None or now <= before[1] or count < before[0]:  # first sight, or restarted
            return None
        return (count - before[0]) / (now - before[1])

    def forget_untouched(self) -> None:
        for key in set(self.seen) - self.touched:
            del self.seen[key]
        self.touched.clear()


def _add(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


def _worst(states: list[str]) -> str:
    return min(states, key=lambda s: STATE_ORDER.index(s) if s in STATE_ORDER else 0) if states else ''


# -- assembling the rows: no I/O, so tests can feed it -----------------------------

def build_rows(services: dict[str, list[Any]], answers: dict[str, Any], ps: dict[str, Any] | None,
               rates: Rates, now: float, wall: float, local_host: str,
               local_figures: Callable[[int], tuple[float | None, int | None]] = lambda pid: (None, None),
               routes: dict[str, str | None] | None = None) -> tuple[Row, ...]:
    """`services`: discovery ({name: [InstanceInfo]}); `answers`: instance id → its
    get_metrics reply, or the exception asking raised (missing: not asked yet); `ps`: the
    node's ps reply or None; `local_figures(pid)`: (cpu %, rss) of a local process that
    is no instance (a node block like redis, or the hub); `routes`: {service: its route}."""
    blocks = {b['name']: b for b in (ps or {}).get('blocks', [])}
    procs: dict[int, tuple[dict, dict]] = {}  # pid → (block, process), this machine only
    for block in blocks.values():
        for proc in block['processes']:
            procs[proc['pid']] = (block, proc)
    matched: set[int] = set()
    rows: list[Row] = []
    for service in sorted(services):
        instances = services[service]
        group = 's:' + service
        local = {i.id: procs.get(i.pid) if is_local(i.host, local_host) else None for i in instances}
        mine = {p[0]['name']: p[0] for p in local.values() if p}
        children = [_instance_row(service, info, local[info.id], answers.get(info.id), rates, now, wall)
                    for info in instances]
        matched.update(i.pid for i in instances if local[i.id])
        children.sort(key=lambda r: (r.blocks, _index(r.name), r.host, r.pid or 0))
        registered = {i.pid for i in instances if local[i.id]}
        for block in mine.values():  # started by the node, not registered yet (or gone already)
            for proc in block['processes']:
                if proc['pid'] not in registered:
                    matched.add(proc['pid'])
                    children.append(_process_row(block, proc, group, local_host, local_figures,
                                                 'stopping' if proc['stopping'] else 'starting', service))
        desired = sum(b['desired'] for b in mine.values()) if mine else None
        live = [r for r in children if r.state not in ('stopping', 'starting')]
        states = [b['state'] for b in mine.values()] + [r.state for r in children if r.state in
                                                        ('unresponsive', 'error', 'not ready')]
        state = _worst(states) or 'running'
        # some instances in trouble: degraded; 'not ready' when none is ready
        if state in ('unresponsive', 'error') or (state == 'not ready' and any(r.state == 'running' for r in live)):
            state = 'degraded'
        version = ''
        if versioned(instances):  # which version each runs, and which one unpinned calls reach
            children, version = with_versions(children, instances, (routes or {}).get(service))
        rows.append(dataclasses.replace(_group_row(group, 'service', service, children, '%d/%d' % (
            len(live), desired if desired is not None else len(instances)), state,
            sum(b['restarts'] for b in mine.values()) if mine else None, service, tuple(mine)), version=version))
        rows.extend(children)
    for block in blocks.values():  # the node's other blocks: the hub, redis, unregistered services
        pids = [p['pid'] for p in block['processes']]
        if pids and all(pid in matched for pid in pids):
            continue
        if not pids and any(block['name'] in r.blocks for r in rows):
            continue
        group = 'b:' + block['name']
        children = [_process_row(block, proc, group, local_host, local_figures,
                                 'stopping' if proc['stopping'] else 'running' if proc['ready'] else 'starting')
                    for proc in block['processes'] if proc['pid'] not in matched]
        rows.append(_group_row(group, 'block', block['name'], children,
                               '%d/%d' % (block['running'], block['desired']), block['state'],
                               block['restarts'], '', (block['name'],)))
        rows.extend(children)
    rates.forget_untouched()
    return tuple(rows)


def _instance_row(service: str, info: Any, proc: tuple[dict, dict] | None, answer: Any, rates: Rates,
                  now: float, wall: float) -> Row:
    """One instance from discovery: its get_metrics `answer` (a reply, an exception, or
    None when not asked yet), its node block and process in `proc` when the node runs it."""
    answered = isinstance(answer, dict)
    f = figures(answer, service) if answered else Figures()
    if proc is not None and proc[1]['stopping']:
        state = 'stopping'
    elif isinstance(answer, BaseException):
        state = 'unresponsive' if _no_answer(answer) else 'error'
    elif getattr(info, 'ready', True) is False:  # a hard dependency has no instance: callers skip it
        state = 'not ready'
    else:
        state = 'running' if answered else 'starting'
    uptime = f.uptime if f.uptime is not None else (wall - info.started if info.started else None)
    return Row(key='i:%s:%s' % (service, info.id), kind='instance', group='s:' + service,
               name='%s.%d' % (proc[0]['name'], proc[1]['index']) if proc else info.id[:8],
               pid=info.pid or None, host=info.host, state=state, uptime=uptime, cpu=f.cpu, rss=f.rss,
               errors=f.errors if answered else None, p99=f.p99,
               rps=rates.rate(('rpc', info.id, service), f.calls if answered else None, now),
               eps=rates.rate(('event', info.id, service), f.events, now),
               hps=rates.rate(('http', info.id, service), f.http, now),
               service=service, blocks=(proc[0]['name'],) if proc else (), instance=info.id,
               missing=missing(info), breakers=breakers(answer) if answered else ())


def is_local(host: str, local_host: str) -> bool:
    """`host` (as discovery lists it) is this machine, so the node here may run it."""
    return host in (local_host, 'localhost', '127.0.0.1', '')


def _no_answer(exc: BaseException) -> bool:
    return isinstance(exc, (Timeout, ConnectionLost))


def _index(name: str) -> int:
    tail = name.rpartition('.')[2]
    return int(tail) if tail.isdigit() else 0


def _process_row(block: dict, proc: dict, group: str, local_host: str,
                 local_figures: Callable[[int], tuple[float | None, int | None]], state: str,
                 service: str = '') -> Row:
    cpu, rss = local_figures(proc['pid'])
    return Row(key='p:%s:%d' % (group, proc['pid']), kind='instance', group=group,
               name='%s.%d' % (block['name'], proc['index']), pid=proc['pid'], host=local_host, state=state,
               uptime=proc['uptime'], cpu=cpu, rss=rss, service=service, blocks=(block['name'],))


def _group_row(key: str, kind: str, name: str, children: list[Row], count: str, state: str,
               restarts: int | None, service: str, blocks: tuple[str, ...]) -> Row:
    total: dict[str, Any] = {'cpu': None, 'rss': None, 'rps': None, 'errors': None, 'eps': None, 'hps': None}
    for row in children:
        for field in total:
            total[field] = _add(total[field], getattr(row, field))
    p99s = [r.p99 for r in children if r.p99 is not None]
    return Row(key=key, kind=kind, name=name, count=count, state=state, restarts=restarts,
               p99=max(p99s) if p99s else None, service=service, blocks=blocks,
               missing=_merged_missing(children), breakers=_merged_breakers(children), **total)
