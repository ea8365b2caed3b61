"""node.yml's top-level `metrics:`: where the node serves Prometheus' /metrics
(fannode.node.prometheus serves it)."""
from __future__ import annotations

from dataclasses import dataclass

from fannode.core.config import Config

DEFAULT_PORT = 9464  # OpenTelemetry's Prometheus exporter port, which scrapers expect
KEYS = ('host', 'port', 'interval')


@dataclass(frozen=True)
class MetricsSpec:
    host: str = '127.0.0.1'
    port: int = DEFAULT_PORT
    interval: float = 5.0   # seconds between two gatherings of the instances' figures


def read_metrics(config: Config) -> MetricsSpec | None:
    """Absent or false: no /metrics; true: the defaults."""
    if 'metrics' not in config:
        return None
    value = config.require('metrics', (bool, dict, type(None)))
    if value is False:
        return None
    if value is True or value is None:
        return MetricsSpec()
    section = config.section('metrics')
    section.check_keys(KEYS)
    host = section.require('host', str, '127.0.0.1')
    if not host:
        raise section.error('host', 'must not be empty')
    port = section.require('port', int, DEFAULT_PORT)
    if not 0 <= port <= 65535:  # 0: any free port (tests); the node prints the one it got
        raise section.error('port', 'expected a port 0..65535, got %d' % port)
    interval = section.require('interval', float, 5.0)
    if not 0.1 <= interval <= 3600:
        raise section.error('interval', 'expected seconds 0.1..3600, got %r' % interval)
    return MetricsSpec(host, port, interval)
