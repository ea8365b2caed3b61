"""Real ZooKeeper and RabbitMQ for integration tests.

`scripts/provision start` runs each server on a free loopback port with everything under a tmp
dir; `scripts/provision stop` ends it by the pids recorded there, whatever the tests did. Where
the Debian packages are missing the tests skip, except under CI=true, which must run them.

The fixtures are methods of `Servers`, registered once as a plugin of the whole session (not
as this directory's conftest fixtures): tests/contracts uses the same servers, and a second
copy of the fixtures would start a second ZooKeeper and RabbitMQ.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PROVISION = Path(__file__).resolve().parents[2] / 'scripts' / 'provision'
HOST = '127.0.0.1'
URLS = {'zookeeper': 'zookeeper://{host}:{port}',
        'rabbitmq': 'amqp://guest:guest@{host}:{port}/%2F'}

PLUGIN = 'fannode-test-servers'


def pytest_configure(config):
    configure(config)


def configure(config) -> None:
    """What this conftest, and tests/contracts' (which loads this file), do when loaded."""
    # The fixtures of `Servers`, visible to every test, registered once per session.
    if config.pluginmanager.get_plugin(PLUGIN) is None:
        config.pluginmanager.register(Servers(), PLUGIN)
    # Test modules elsewhere do `from conftest import ...` (some inside test functions) and mean
    # tests/conftest.py. With no __init__.py, pytest imports this file under the same name and
    # drops that module's sys.modules entry first: hand the name back once this one is loaded.
    root = Path(__file__).resolve().parents[1] / 'conftest.py'
    for plugin in config.pluginmanager.get_plugins():
        if Path(getattr(plugin, '__file__', None) or '.').resolve() == root:
            sys.modules['conftest'] = plugin


@dataclass(frozen=True)
class Server:
    name: str
    host: str
    port: int
    dir: Path
    url: str

    @property
    def pid(self) -> int:
        """The pid `stop` signals first (java; for RabbitMQ the script that runs beam)."""
        return int((self.dir / f'{self.name}.pid').read_text())


def provision(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(PROVISION), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Servers:
    """The fixtures: `provisioned`, `start_server`, `zookeeper`, `rabbitmq`, `provision_cli`."""

    @pytest.fixture(scope='session')
    def provision_cli(self):
        """`provision_cli('stop', 'zookeeper', '--dir', d)`: run the script, capture its output."""
        return provision

    @pytest.fixture(scope='session')
    def provisioned(self) -> None:
        """Skip (fail under CI=true) unless scripts/provision finds the packages installed."""
        result = provision('status')
        if result.returncode != 0:
            missing = [line for line in result.stdout.splitlines() if 'not installed' in line]
            reason = 'scripts/provision status: ' + '; '.join(missing or [result.stderr.strip()])
            if os.environ.get('CI') == 'true':
                pytest.fail(reason + ' (CI=true: integration tests must run)', pytrace=False)
            pytest.skip(reason)

    @pytest.fixture(scope='session')
    def start_server(self, provisioned, tmp_path_factory):
        """`with start_server('rabbitmq') as server:` one more server, for a test of its own."""

        @contextmanager
        def start(name: str):
            d = tmp_path_factory.mktemp(name)
            port = free_port()
            try:
                result = provision('start', name, '--port', str(port), '--dir', str(d))
                if result.returncode != 0:
                    why = (result.stderr or result.stdout).strip()
                    pytest.fail('%s did not start: %s' % (name, why), pytrace=False)
                yield Server(name, HOST, port, d, URLS[name].format(host=HOST, port=port))
            finally:
                provision('stop', name, '--dir', str(d))  # also after a failed or timed-out start

        return start

    @pytest.fixture(scope='session')
    def zookeeper(self, start_server):
        with start_server('zookeeper') as server:
            yield server

    @pytest.fixture(scope='session')
    def rabbitmq(self, start_server):
        with start_server('rabbitmq') as server:
            yield server

