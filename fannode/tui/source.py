"""What `fannode top` shows, and what it asks the cluster to do.

Textual runs asyncio in the main thread; fannode's clients (registries, RPC connections)
are gevent-based. So everything that talks to the cluster runs here, in ONE background
thread with a gevent hub of its own: each interval it lists discovery, asks every
instance for `get_metrics` at once (with a short timeout: an instance that does not
answer is 'unresponsive', never a frozen screen), asks the node for `ps` when one runs
the node.yml, and hands the app an immutable `Snapshot`. The app never waits on the
network: it calls the request methods (`scale`, `restart`, `follow_logs`, `trace`),
which only queue work for the thread, and gets the outcome back through `deliver`.

`deliver(kind, payload)` is called in this thread; the app turns it into a Textual
message (post_message is thread-safe and never blocks, so a closing app cannot
deadlock the thread). Kinds:

    'snapshot'  Snapshot
    'status'    Status: one line saying how an action went
    'logs'      LogBatch: records for the log pane
    'trace'     TraceResult: one trace's spans and logs
"""
from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import socket
import threading
import time
from typing import Any, Callable

Deliver = Callable[[str, Any], None]
LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')
BUILTINS = frozenset(('ping', 'status', 'inspect', 'get_metrics'))  # fannode.runtime.container.BUILTINS
STATE_ORDER = ('failed', 'backoff', 'unresponsive', 'error', 'starting', 'waiting', 'stopping',
               'degraded', 'ready', 'running', 'stopped')


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
               ) -> tuple[Row, ...]:
    """`services`: discovery ({name: [InstanceInfo]}); `answers`: instance id → its
    get_metrics reply, or the exception asking raised (missing: not asked yet); `ps`: the
    node's ps reply or None; `local_figures(pid)`: (cpu %, rss) of a local process that
    is no instance (a node block like redis, or the hub)."""
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
        local = {i.id: procs.get(i.pid) if _is_local(i.host, local_host) else None for i in instances}
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
                                                        ('unresponsive', 'error')]
        state = _worst(states) or 'running'
        if state in ('unresponsive', 'error'):
            state = 'degraded'
        rows.append(_group_row(group, 'service', service, children, '%d/%d' % (
            len(live), desired if desired is not None else len(instances)), state,
            sum(b['restarts'] for b in mine.values()) if mine else None, service, tuple(mine)))
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
               service=service, blocks=(proc[0]['name'],) if proc else (), instance=info.id)


def _is_local(host: str, local_host: str) -> bool:
    return host in (local_host, 'localhost', '127.0.0.1', '')


def _no_answer(exc: BaseException) -> bool:
    from fannode.exceptions import ConnectionLost, Timeout
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
               p99=max(p99s) if p99s else None, service=service, blocks=blocks, **total)


# -- the log pipeline, in one place -------------------------------------------------

class LogFeed:
    """The log pane's and trace view's only way to the cluster's logs: the log hubs,
    through fannode.logs.client.LogClient (gevent; used from the source's thread).
    Without that module `available` is False and the views say why in one line."""

    def __init__(self, registry_url: str):
        self.registry_url = registry_url
        self.client: Any = None
        self.problem = ''
        try:
            from fannode.logs.client import LogClient  # type: ignore[import-not-found]
        except ImportError:
            self.problem = 'logs are not available: this fannode has no log pipeline (fannode.logs)'
            return
        try:
            self.client = LogClient(registry_url)
        except Exception as e:  # noqa: BLE001 - whatever it raises, the pane says it in one line
            self.problem = 'logs are not available: %s' % (e,)

    @property
    def available(self) -> bool:
        return self.client is not None

    def follow(self, callback: Callable[[dict], None], services: tuple[str, ...] = (),
               level: str | None = None, history: int = 200) -> Any:
        return self.client.follow(callback, services=tuple(services), level=level or '', history=history)

    def trace(self, trace_id: str, timeout: float = 2.0) -> list[dict]:
        return list(self.client.trace(trace_id, timeout=timeout))

    def close(self) -> None:
        close = getattr(self.client, 'close', None)
        if close is not None:
            close()


# -- the thread ------------------------------------------------------------------

class TopSource:
    """The data source of `fannode top`: see the module's docstring."""

    def __init__(self, registry_url: str, node_file: str = 'node.yml', interval: float = 1.0,
                 timeout: float | None = None):
        self.registry_url = registry_url
        self.node_file = node_file
        self.interval = interval
        self.timeout = timeout if timeout is not None else min(0.8, interval * 0.8)
        self.deliver: Deliver = lambda kind, payload: None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._requests: collections.deque[tuple[str, tuple]] = collections.deque()
        self._wakeup: Any = None
        self._lock = threading.Lock()  # the wakeup watcher is sent from other threads
        self._follows = itertools.count(1)
        self.local_host = socket.gethostname()
        self.last: Snapshot | None = None
        self._jobs: list[Any] = []
        self._services: dict[str, list[Any]] = {}
        self._connections: dict[str, Any] = {}
        self._rates = Rates()
        self._ps: dict[str, Any] | None = None
        self._pending: dict[str, tuple[int, float]] = {}  # block → (count asked, when)
        self._procs: dict[int, Any] = {}  # psutil.Process of local non-instance processes
        self._logs: LogFeed | None = None
        self._follow: tuple[int, Any] = (0, None)
        self._buffer: list[dict] = []

    # -- from the app's thread: never block -------------------------------------

    def attach(self, deliver: Deliver) -> None:
        """Where snapshots and outcomes go from now on (the app, once it runs); the last
        snapshot, if there is one, at once."""
        self.deliver = deliver
        if self.last is not None:
            deliver('snapshot', self.last)

    def start(self, wait: float = 10.0) -> None:
        """Start the thread; raise what stops it from reaching the cluster at all (a bad
        URL, no hub there, an unreachable ZooKeeper), so the command can say it in one line."""
        self._thread = threading.Thread(target=self._main, name='fannode-top-source', daemon=True)
        self._thread.start()
        self._ready.wait(wait)
        if self._failed is not None:
            raise self._failed

    def stop(self, timeout: float = 3.0) -> None:
        self._request('stop')
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def scale(self, row: Row, delta: int) -> None:
        self._request('scale', row, delta)

    def restart(self, row: Row) -> None:
        self._request('restart', row)

    def follow_logs(self, row: Row | None, level: str | None = None) -> int:
        """Follow the logs of `row` (a service, a block or an instance; None: all); the
        batches that come back carry the number returned here."""
        number = next(self._follows)
        self._request('follow', number, row, level)
        return number

    def stop_logs(self) -> None:
        self._request('follow', 0, None, None)

    def trace(self, trace_id: str) -> None:
        self._request('trace', trace_id)

    def _request(self, *request: Any) -> None:
        self._requests.append((request[0], request[1:]))
        with self._lock:
            if self._wakeup is not None:
                self._wakeup.send()  # thread-safe: wakes the gevent loop of our thread

    # -- in the thread ------------------------------------------------------------

    def _main(self) -> None:
        import gevent
        import gevent.event
        import gevent.queue
        hub = gevent.get_hub()
        hub.exception_stream = None  # never a traceback over the screen; failures are handled
        self._done = gevent.event.Event()
        self._actions: gevent.queue.Queue = gevent.queue.Queue()
        wakeup = hub.loop.async_()
        wakeup.start(self._drain)
        with self._lock:
            self._wakeup = wakeup
        try:
            self._open()
        except BaseException as e:  # noqa: BLE001 - handed to start(), which raises it
            self._failed = e
        else:
            self._ready.set()
            loops = [gevent.spawn(self._poll_loop), gevent.spawn(self._flush_loop), gevent.spawn(self._act_loop)]
            self._drain()  # requests made before the loop ran
            self._done.wait()
            gevent.killall([*loops, *self._jobs], timeout=1.0)
            self._close()
        finally:
            with self._lock:
                self._wakeup = None
            wakeup.close()
            self._ready.set()
            hub.destroy(destroy_loop=True)

    def _open(self) -> None:
        from fannode.discovery import get_registry
        from fannode.zmqrpc.connection import shared_context
        from fannode.node import paths
        self._context = shared_context()
        self._endpoint = paths.control_endpoint(self.node_file)
        self.registry = get_registry(self.registry_url)
        self.registry.services()  # the first contact: an absent hub is an error at start

    def _close(self) -> None:
        self._stop_follow()
        if self._logs is not None:
            self._logs.close()
        for conn in self._connections.values():
            conn.close()
        self.registry.close()

    def _drain(self) -> None:
        """In the loop (must not block): start what the app asked for."""
        import gevent
        while self._requests:
            name, args = self._requests.popleft()
            if name == 'stop':
                self._done.set()
                return
            if name in ('scale', 'restart'):  # one after the other, in the order of the keys
                self._actions.put((getattr(self, '_do_' + name), args))
                continue
            job = gevent.spawn(self._guarded, getattr(self, '_do_' + name), *args)
            self._jobs.append(job)
            job.link(lambda g: self._jobs.remove(g) if g in self._jobs else None)

    def _act_loop(self) -> None:
        """Scale and restart requests, one at a time: `+` pressed twice asks for 4, then 5."""
        while True:
            work, args = self._actions.get()
            self._guarded(work, *args)

    def _guarded(self, work: Callable[..., Any], *args: Any) -> None:
        from fannode.exceptions import FannodeError
        try:
            work(*args)
        except FannodeError as e:
            self.deliver('status', Status(str(e), ok=False))
        except Exception as e:  # noqa: BLE001 - one line in the status bar, never a traceback
            self.deliver('status', Status('%s: %s' % (type(e).__name__, e), ok=False))

    # -- polling ------------------------------------------------------------------

    def _poll_loop(self) -> None:
        import gevent
        while True:
            started = time.monotonic()
            try:
                snapshot = self.poll()
            except Exception as e:  # noqa: BLE001 - the thread lives on; the screen says why
                snapshot = Snapshot((), self.registry_url, node_file=self.node_file,
                                    problems=('%s: %s' % (type(e).__name__, e),), taken=time.time())
            self.last = snapshot
            self.deliver('snapshot', snapshot)
            gevent.sleep(max(0.05, started + self.interval - time.monotonic()))

    def poll(self) -> Snapshot:
        import gevent

        from fannode.exceptions import FannodeError
        problems = []
        ps_job = gevent.spawn(_caught, self._node_ps)
        try:
            self._services = {name: found for name, found in self.registry.services().items()
                              if not name.startswith('fannode.')}  # log hubs: their node block shows them
        except FannodeError as e:  # keep showing the last ones known, and say so
            problems.append(str(e))
        instances = {i.id: i for found in self._services.values() for i in found}
        self._retire(instances)
        serves = {i.id: name for name, found in self._services.items() for i in found}
        asks = {iid: gevent.spawn(_caught, self._get_metrics, info.endpoint, serves[iid])
                for iid, info in instances.items()}
        gevent.joinall([ps_job, *asks.values()], timeout=self.timeout + 0.2)
        answers = {}
        for iid, job in asks.items():
            if not job.ready():
                job.kill(block=False)
            answers[iid] = job.value if job.ready() else _timeout('no metrics within %gs' % self.timeout)
        if not ps_job.ready():
            ps_job.kill(block=False)
        ps, node_problem = ps_job.value if ps_job.ready() else (None, 'the node did not answer in time')
        if node_problem:
            problems.append(node_problem)
        self._ps = ps
        rows = build_rows(self._services, answers, ps, self._rates, time.monotonic(), time.time(),
                          self.local_host, self._local_figures)
        node = '%s (pid %s)' % (self.node_file, ps['pid']) if ps else ''
        return Snapshot(rows, self.registry_url, node, self.node_file, tuple(problems), time.time(),
                        len(self._services), len(instances))

    def _node_ps(self) -> tuple[dict | None, str]:
        """The node's ps, or None when no node runs node.yml (not a problem)."""
        if not os.path.exists(self._endpoint[len('ipc://'):]):
            return None, ''
        try:
            return self._control('ps', timeout=max(self.timeout, 0.5)), ''
        except Exception as e:  # noqa: BLE001 - said in the status line
            return None, str(e)

    def _control(self, method: str, timeout: float = 30.0, **body: Any) -> Any:
        """control.call (plain blocking pyzmq) in a worker thread, so our loop goes on."""
        import gevent
        from fannode.node import control
        return gevent.get_hub().threadpool.apply(control.call, (self._endpoint, method, timeout), body)

    def _get_metrics(self, endpoint: str, service: str) -> dict:
        """Any service an instance serves answers get_metrics the same: the process's."""
        from fannode.zmqrpc.connection import Connection
        from fannode.zmqrpc.direct import call_on
        conn = self._connections.get(endpoint)
        if conn is None:
            conn = self._connections[endpoint] = Connection(self._context, endpoint)
        return call_on(conn, '%s.get_metrics' % service, {}, self.timeout)

    def _retire(self, instances: dict[str, Any]) -> None:
        """Close connections to endpoints that left discovery."""
        wanted = {i.endpoint for i in instances.values()}
        for endpoint in set(self._connections) - wanted:
            self._connections.pop(endpoint).close()

    def _local_figures(self, pid: int) -> tuple[float | None, int | None]:
        """cpu % and rss of a process of the node that is not an instance (the hub, redis)."""
        import psutil
        proc = self._procs.get(pid)
        try:
            if proc is None:
                proc = self._procs[pid] = psutil.Process(pid)
                proc.cpu_percent(None)
                return None, proc.memory_info().rss
            with proc.oneshot():
                return proc.cpu_percent(None), proc.memory_info().rss
        except psutil.Error:
            self._procs.pop(pid, None)
            return None, None

    # -- actions ----------------------------------------------------------------

    def _need_node(self) -> dict[str, Any]:
        from fannode.exceptions import FannodeError
        ps = self._ps
        if ps is None:
            raise FannodeError('no node running for %s: scale and restart need `fannode up`' % self.node_file)
        return ps

    def _do_scale(self, row: Row, delta: int) -> None:
        from fannode.exceptions import FannodeError
        ps = self._need_node()
        if not row.blocks:
            raise FannodeError('%s is not run by the node for %s' % (row.name, self.node_file))
        name = row.blocks[0]
        desired = {b['name']: b['desired'] for b in ps['blocks']}.get(name, 0)
        asked = self._pending.get(name)
        if asked and time.monotonic() - asked[1] < 3 * self.interval + 1:
            desired = asked[0]  # a second key press before the node's ps shows the first
        count = desired + delta
        if count < 0:
            raise FannodeError('%s already runs no process' % name)
        self._pending[name] = (count, time.monotonic())
        done = self._control('scale', name=name, count=count)
        self.deliver('status', Status('%s: %d → %d processes' % (done['name'], done['before'], done['count'])))

    def _do_restart(self, row: Row) -> None:
        from fannode.exceptions import FannodeError, UsageError
        self._need_node()
        if not row.blocks:
            raise FannodeError('%s is not run by the node for %s' % (row.name, self.node_file))
        if row.kind == 'instance':
            if row.pid is None or not _is_local(row.host, self.local_host):
                raise FannodeError('%s runs on %s, not under this node' % (row.name, row.host))
            try:
                done = self._control('restart_process', pid=row.pid)
            except UsageError as e:
                if 'no method' in str(e):
                    raise FannodeError('this node cannot restart one process; R restarts %s' % row.blocks[0])
                raise
            self.deliver('status', Status('%s.%d (pid %d) restarting' % (done['name'], done['index'], row.pid)))
            return
        for name in row.blocks:
            self.deliver('status', Status('restarting %s…' % name))
            self._control('restart', name=name)
            self.deliver('status', Status('%s restarted' % name))

    # -- logs and traces ----------------------------------------------------------

    def _feed(self) -> LogFeed:
        if self._logs is None:
            self._logs = LogFeed(self.registry_url)
        return self._logs

    def _do_follow(self, number: int, row: Row | None, level: str | None) -> None:
        self._stop_follow()
        if not number:
            return
        feed = self._feed()
        if not feed.available:
            self.deliver('logs', LogBatch(number, (), feed.problem))
            return
        keep = _record_filter(row)
        services = (row.service,) if row is not None and row.service else ()

        def take(record: dict) -> None:
            if self._follow[0] == number and keep(record):
                self._buffer.append(record)
        self._follow = (number, None)  # before follow(), which may hand over history at once
        handle = feed.follow(take, services=services, level=level)
        if self._follow[0] == number:
            self._follow = (number, handle)
        else:  # another request came while follow() was connecting
            handle.stop()
            return
        self.deliver('logs', LogBatch(number, ()))  # the pane knows the feed is on

    def _stop_follow(self) -> None:
        number, handle = self._follow
        self._follow = (0, None)
        self._buffer = []
        if handle is not None:
            handle.stop()

    def _flush_loop(self) -> None:
        """Hand records over in batches: a chatty service must not flood the app with messages."""
        import gevent
        while True:
            gevent.sleep(0.2)
            if self._buffer:
                batch, self._buffer = self._buffer, []
                self.deliver('logs', LogBatch(self._follow[0], tuple(batch)))

    def _do_trace(self, trace_id: str) -> None:
        feed = self._feed()
        if not feed.available:
            self.deliver('trace', TraceResult(trace_id, (), feed.problem))
            return
        try:
            records = feed.trace(trace_id)
        except Exception as e:  # noqa: BLE001 - shown in the view, one line
            self.deliver('trace', TraceResult(trace_id, (), '%s: %s' % (type(e).__name__, e)))
            return
        self.deliver('trace', TraceResult(trace_id, tuple(sorted(records, key=lambda r: r.get('ts', 0)))))


def _caught(work: Callable[..., Any], *args: Any) -> Any:
    """For a greenlet: what `work` returns, or the exception it raised (a greenlet that
    raises would have gevent print it)."""
    try:
        return work(*args)
    except Exception as e:  # noqa: BLE001 - the caller looks at it
        return e


def _timeout(message: str) -> BaseException:
    from fannode.exceptions import Timeout
    return Timeout(message)


def _record_filter(row: Row | None) -> Callable[[dict], bool]:
    """Records of the row: every record for a group row (the feed filters by service),
    the instance's own for an instance row, the block's for a node block."""
    if row is None:
        return lambda record: True
    if row.kind == 'instance':
        return lambda record: record.get('pid') == row.pid and (not row.host or record.get('host') in (row.host, None))
    if row.kind == 'block':
        return lambda record: record.get('service') == row.name or record.get('instance', '').startswith(row.name + '.')
    return lambda record: True
