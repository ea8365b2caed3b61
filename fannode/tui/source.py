"""Where `fannode top` gets what it shows (fannode.tui.rows), and how it asks the
cluster to act.

Textual runs asyncio in the main thread; fannode's clients (registries, RPC connections)
are gevent-based. So everything that talks to the cluster runs here, in ONE background
thread with a gevent hub of its own: each interval it lists discovery, asks every
instance for `get_metrics` at once (fannode.tui.asking.InstanceAsks, with a short
timeout: an instance that does not answer is 'unresponsive', never a frozen screen), asks
the node for `ps` when one runs the node.yml (fannode.node.client.NodeClient), and hands
the app an immutable `Snapshot`. The app never waits on the network: it calls the
request methods (`scale`, `restart`, `follow_logs`, `trace`), which only queue work for
the thread, and gets the outcome back through `deliver`.

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
import itertools
import socket
import threading
import time
from typing import Any, Callable, Protocol

from fannode.exceptions import FannodeError, UsageError
from fannode.logs.records import ts_of
from fannode.tui.logfeed import LogFeed, record_filter
from fannode.tui.procs import LocalFigures
from fannode.tui.rows import LogBatch, Rates, Row, Snapshot, Status, TraceResult, build_rows, is_local
from fannode.tui.versions import RouteSwitch

Deliver = Callable[[str, Any], None]


class Source(Protocol):
    """What the app and its screens ask of a source: TopSource, or one serving fixed data
    (the tests'). Each call only asks; the answers come through `deliver`."""

    def attach(self, deliver: Deliver) -> None: ...
    def stop(self) -> None: ...
    def scale(self, row: Row, delta: int) -> None: ...
    def restart(self, row: Row) -> None: ...
    def route(self, row: Row) -> None: ...
    def follow_logs(self, row: Row | None, level: str | None = None) -> int: ...
    def stop_logs(self) -> None: ...
    def trace(self, trace_id: str) -> None: ...


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
        self._rates = Rates()
        self._ps: dict[str, Any] | None = None
        self._pending: dict[str, tuple[int, float]] = {}  # block → (count asked, when)
        self._local_figures = LocalFigures()  # of local processes that are no instance
        self._logs: LogFeed | None = None
        self._follow: tuple[int, Any] = (0, None)
        self._buffer: list[dict] = []
        self.routes = RouteSwitch(registry_url)  # `v`, and each service's route in the rows

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
            self._thread.join(wait)  # its gevent hub is gone before the process exits
            raise self._failed

    def stop(self, timeout: float = 3.0) -> None:
        self._request('stop')
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def scale(self, row: Row, delta: int) -> None:
        self._request('scale', row, delta)

    def restart(self, row: Row) -> None:
        self._request('restart', row)

    def route(self, row: Row) -> None:
        self._request('route', row)

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
            self._close_opened()  # sockets left on a destroyed loop crash the interpreter at exit
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
        from fannode.node.client import NodeClient
        from fannode.tui.asking import InstanceAsks
        self.node = NodeClient(self.node_file)
        self._calls = InstanceAsks()  # connections kept between polls
        self.registry = get_registry(self.registry_url)
        self.registry.services()  # the first contact: an absent hub is an error at start

    def _close_opened(self) -> None:
        for part in (getattr(self, '_calls', None), getattr(self, 'registry', None)):
            if part is not None:
                part.close()

    def _close(self) -> None:
        self._stop_follow()
        self._close_opened()
        self.routes.close()

    def _drain(self) -> None:
        """In the loop (must not block): start what the app asked for."""
        import gevent
        while self._requests:
            name, args = self._requests.popleft()
            if name == 'stop':
                self._done.set()
                return
            if name in ('scale', 'restart', 'route'):  # one after the other, in the order of the keys
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
        problems = []
        ps_job = gevent.spawn(_caught, self._node_ps)
        try:
            self._services = {name: found for name, found in self.registry.services().items()
                              if not name.startswith('fannode.')}  # log hubs: their node block shows them
        except FannodeError as e:  # keep showing the last ones known, and say so
            problems.append(str(e))
        instances = {i.id: i for found in self._services.values() for i in found}
        self._calls.keep_only({i.endpoint for i in instances.values()})  # those that left discovery
        # any service an instance serves answers get_metrics the same: the process's
        asks = {i.id: (i.endpoint, '%s.get_metrics' % name) for name, found in self._services.items() for i in found}
        asked = time.monotonic()
        answers = self._calls.ask_all(asks, self.timeout)
        ps_job.join(timeout=max(0.0, asked + self.timeout + 0.2 - time.monotonic()))
        if not ps_job.ready():
            ps_job.kill(block=False)
        ps, node_problem = ps_job.value if ps_job.ready() else (None, 'the node did not answer in time')
        if node_problem:
            problems.append(node_problem)
        self._ps = ps
        rows = build_rows(self._services, answers, ps, self._rates, time.monotonic(), time.time(),
                          self.local_host, self._local_figures, self.routes.routes(self._services))
        node = '%s (pid %s)' % (self.node_file, ps['pid']) if ps else ''
        return Snapshot(rows, self.registry_url, node, self.node_file, tuple(problems), time.time(),
                        len(self._services), len(instances))

    def _node_ps(self) -> tuple[dict | None, str]:
        """The node's ps, or None when no node runs node.yml (not a problem)."""
        from fannode.node.client import NotRunning
        try:
            return self._blocking(self.node.ps, timeout=max(self.timeout, 0.5)), ''
        except NotRunning:
            return None, ''
        except Exception as e:  # noqa: BLE001 - said in the status line
            return None, str(e)

    def _blocking(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A NodeClient call (plain blocking pyzmq) in a worker thread, so our loop goes on."""
        import gevent
        return gevent.get_hub().threadpool.apply(call, args, kwargs)

    # -- actions ----------------------------------------------------------------

    def _need_node(self) -> dict[str, Any]:
        ps = self._ps
        if ps is None:
            raise FannodeError('no node running for %s: scale and restart need `fannode up`' % self.node_file)
        return ps

    def _do_scale(self, row: Row, delta: int) -> None:
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
        done = self._blocking(self.node.scale, name, count)
        self.deliver('status', Status('%s: %d → %d processes' % (done['name'], done['before'], done['count'])))

    def _do_restart(self, row: Row) -> None:
        self._need_node()
        if not row.blocks:
            raise FannodeError('%s is not run by the node for %s' % (row.name, self.node_file))
        if row.kind == 'instance':
            if row.pid is None or not is_local(row.host, self.local_host):
                raise FannodeError('%s runs on %s, not under this node' % (row.name, row.host))
            try:
                done = self._blocking(self.node.restart_process, row.pid)
            except UsageError as e:
                if 'no method' in str(e):
                    raise FannodeError('this node cannot restart one process; R restarts %s' % row.blocks[0])
                raise
            self.deliver('status', Status('%s.%d (pid %d) restarting' % (done['name'], done['index'], row.pid)))
            return
        for name in row.blocks:
            self.deliver('status', Status('restarting %s…' % name))
            self._blocking(self.node.restart, name)
            self.deliver('status', Status('%s restarted' % name))

    def _do_route(self, row: Row) -> None:
        self.deliver('status', Status(self.routes.switch(row.service, self._services.get(row.service, []))))

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
        keep = record_filter(row)
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
        self.deliver('trace', TraceResult(trace_id, tuple(sorted(records, key=ts_of))))


def _caught(work: Callable[..., Any], *args: Any) -> Any:
    """For a greenlet: what `work` returns, or the exception it raised (a greenlet that
    raises would have gevent print it)."""
    try:
        return work(*args)
    except Exception as e:  # noqa: BLE001 - the caller looks at it
        return e
