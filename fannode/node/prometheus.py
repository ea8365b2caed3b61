"""The node's Prometheus endpoint (node.yml `metrics:`): /metrics in Prometheus' text
format, served by prometheus_client's own HTTP server thread.

A scrape never waits on an instance: the node's loop gathers every `interval` seconds
(the blocks' state, each process's CPU and memory, and each service instance's
`get_metrics`, asked concurrently with a timeout) and swaps in a new snapshot, which the
collector hands to whoever scrapes. Fifty slow instances slow the gathering, not the scrape.

Labels: block, process (`block.index`), pid, and for the service figures service and method.
Not `instance`: Prometheus gives every scraped series an `instance` label of its own (the
target), and would rename ours to `exported_instance`. During a rollout NAME and its
NAME@next are one block: their figures are added up (ready only when both are).
"""
from __future__ import annotations

import asyncio
import math
import threading
from typing import TYPE_CHECKING, Any, Iterable

import psutil
import zmq
import zmq.asyncio

from fannode.core.metrics import BUCKETS
from fannode.node import dealer
from fannode.exceptions import FannodeError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

CALL_TIMEOUT = 2.0
KINDS = {'rpc': 'RPC method', 'event': 'event handler', 'http': 'HTTP route'}


class Snapshot:
    """What the last gathering found; the HTTP thread reads it, the node's loop replaces it."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        return list(self.families)


class Exporter:
    def __init__(self, node: Any):  # fannode.node.supervisor.Node (which imports this module)
        from prometheus_client import CollectorRegistry, start_http_server
        spec = node.topology.metrics
        assert spec is not None
        self.node, self.interval = node, spec.interval
        self.snapshot = Snapshot()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.snapshot)  # a collector: what has collect()
        try:
            self.server, _ = start_http_server(spec.port, spec.host, registry)
        except OSError as e:
            raise FannodeError('metrics: cannot listen on %s:%d: %s' % (spec.host, spec.port, e.strerror)) from None
        self.port = self.server.server_port
        self.processes: dict[int, psutil.Process] = {}
        node.printer.event('metrics at http://%s:%d/metrics' % (spec.host, self.port), 'dim')

    async def gathering(self) -> None:
        context = zmq.asyncio.Context.instance()
        try:
            while True:
                try:
                    self.snapshot.families = await self.gather(context)
                except Exception as e:
                    self.node.trouble('gathering metrics', e)
                await asyncio.sleep(self.interval)
        finally:  # shutdown() waits up to half a second for the server's loop: not on the node's
            threading.Thread(target=self.close, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    async def gather(self, context: zmq.asyncio.Context) -> list[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        node = self.node
        ready = GaugeMetricFamily('fannode_block_ready', '1 when every process of the block is ready', labels=['block'])
        running = GaugeMetricFamily('fannode_block_processes', 'processes running', labels=['block'])
        desired = GaugeMetricFamily('fannode_block_desired', 'processes the block should run', labels=['block'])
        restarts = CounterMetricFamily('fannode_block_restarts', 'processes restarted after they exited',
                                       labels=['block'])
        labels = ['block', 'process', 'pid']
        up = GaugeMetricFamily('fannode_instance_up', '1 for each running process', labels=labels)
        cpu = CounterMetricFamily('fannode_instance_cpu_seconds', 'CPU time used (user + system)', labels=labels)
        rss = GaugeMetricFamily('fannode_instance_rss_bytes', 'resident memory', labels=labels)
        who: dict[int, list[str]] = {}
        for name, (is_ready, count, wanted, restarted) in by_name(node.blocks.values()).items():
            ready.add_metric([name], is_ready)
            running.add_metric([name], count)
            desired.add_metric([name], wanted)
            restarts.add_metric([name], restarted)
        for block in list(node.blocks.values()):
            for pid, index in sorted(block.index.items(), key=lambda kv: kv[1]):
                who[pid] = [block.name, '%s.%d' % (block.name, index), str(pid)]
                up.add_metric(who[pid], 0.0 if pid in block.stopping else 1.0)
                figures = self._process(pid)
                if figures is not None:
                    cpu.add_metric(who[pid], figures[0])
                    rss.add_metric(who[pid], figures[1])
        for pid in set(self.processes) - set(who):
            del self.processes[pid]
        families = [ready, running, desired, restarts, up, cpu, rss]
        return families + await self._services(context, who)

    def _process(self, pid: int) -> tuple[float, int] | None:
        try:
            process = self.processes.get(pid) or self.processes.setdefault(pid, psutil.Process(pid))
            with process.oneshot():
                times = process.cpu_times()
                return times.user + times.system, process.memory_info().rss
        except psutil.Error:
            return None

    async def _services(self, context: zmq.asyncio.Context, who: dict[int, list[str]]) -> list[Metric]:
        probe = self.node.probe
        if probe is None:
            return []
        endpoints = await probe.endpoints(self.node.host)
        asked = [(pid, endpoint, service) for pid, (endpoint, service) in endpoints.items() if pid in who]
        replies = await asyncio.gather(*(call(context, endpoint, '%s.get_metrics' % service, CALL_TIMEOUT)
                                         for _, endpoint, service in asked))
        return service_families([(who[pid], service, reply) for (pid, _, service), reply in zip(asked, replies)
                                 if usable(reply)])


def by_name(blocks: Iterable[Any]) -> dict[str, tuple[float, int, int, int]]:
    """block name → (ready, running, desired, restarts); NAME@next (a rollout's new
    processes) has its old block's name and counts with it: one series per block."""
    found: dict[str, tuple[float, int, int, int]] = {}
    for block in list(blocks):
        ready, running, desired, restarts = found.get(block.name, (1.0, 0, 0, 0))
        found[block.name] = (ready if block.is_ready else 0.0, running + block.running,
                             max(desired, block.desired), restarts + block.restarts)
    return found


def _count(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def usable(reply: Any) -> bool:
    """A get_metrics reply of the shape service_families reads. The instance is another
    process: one that answers something else is left out of this round, not the scrape
    broken for every other one (prometheus_client raises on a value that is not a number)."""
    if not isinstance(reply, dict):
        return False
    for kind in KINDS:
        stats = reply.get(kind, {})
        if not isinstance(stats, dict):
            return False
        for name, figures in stats.items():
            if not isinstance(name, str) or not isinstance(figures, dict):
                return False
            if not all(_count(figures.get(key, 0)) for key in ('calls', 'errors', 'sum_s')):
                return False
            counts = figures.get('buckets')
            if counts is not None and not (isinstance(counts, list) and all(
                    isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)):
                return False
    return True


def service_families(replies: list[tuple[list[str], str, dict[str, Any]]]) -> list[Metric]:
    """Histograms and counters per method of each instance's get_metrics reply."""
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
    labels = ['block', 'process', 'pid', 'service', 'method']
    families: list[Metric] = []
    for kind, what in KINDS.items():
        seconds = HistogramMetricFamily('fannode_%s_duration_seconds' % kind, 'time to handle one %s call' % what,
                                        labels=labels)
        calls = CounterMetricFamily('fannode_%s_requests' % kind, 'calls handled by one %s' % what, labels=labels)
        errors = CounterMetricFamily('fannode_%s_errors' % kind, 'calls that failed', labels=labels)
        for owner, service, reply in replies:
            stats = reply.get(kind)
            for name, figures in sorted(stats.items() if isinstance(stats, dict) else ()):
                if not isinstance(figures, dict) or str(name).endswith('.get_metrics'):  # our own asking
                    continue
                method = name.split('.', 1)[1] if kind != 'http' and '.' in name else name
                values = owner + [name.split('.', 1)[0] if kind != 'http' else service, method]
                calls.add_metric(values, figures.get('calls', 0))
                errors.add_metric(values, figures.get('errors', 0))
                counts = figures.get('buckets')
                if isinstance(counts, list) and len(counts) == len(BUCKETS) + 1:  # older instances: none
                    total, cumulative = 0, []
                    for bound, count in zip([*map(str, BUCKETS), '+Inf'], counts):
                        total += count
                        cumulative.append((bound, total))
                    seconds.add_metric(values, cumulative, figures.get('sum_s', 0.0))
        families += [seconds, calls, errors]
    return families


async def call(context: zmq.asyncio.Context, endpoint: str, subject: str, timeout: float) -> Any:
    """One request to one instance, from the node's loop: its answer, or None."""
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    try:
        socket.connect(endpoint)
        return dealer.body_of(await dealer.request(socket, subject, {}, timeout))
    except (asyncio.TimeoutError, zmq.ZMQError):
        return None
    finally:
        socket.close()
