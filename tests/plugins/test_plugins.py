"""Plugins on real instances in this process: which hooks run with what, and that a
failing plugin never breaks a request."""
from __future__ import annotations

import contextvars
import logging
import sys
import uuid

import pytest
from werkzeug.routing import Map, Rule
from werkzeug.test import Client

import fannode
from fannode.runtime.container import ServiceContainer
from fannode.core import trace
from fannode.core.config import Config, load_config
from fannode.discovery.local import LocalRegistry
from fannode.events.local import LocalEvents
from fannode.testing import wait_until
from fannode.calls.client import RpcClient


class Greeting(fannode.Interface):
    @fannode.rpc()
    def greet(self, name):
        return 'Hi, %s!' % name

    @fannode.rpc()
    def fail(self):
        raise ValueError('boom')

    @fannode.rpc(raises=KeyError)
    def lookup(self, key):
        raise KeyError(key)


class Listen(fannode.Interface):
    @fannode.event('fails', retry=1)
    def on_fails(self, event):
        raise RuntimeError('cannot handle %s' % event['n'])


class Web(fannode.WebInterface):
    url_map = Map([Rule('/hello', endpoint='hello'), Rule('/boom', endpoint='boom')])

    def hello(self, request):
        return 'hello'

    def boom(self, request):
        raise RuntimeError('web boom')


class Recorder(fannode.Plugin):
    """Keeps every hook call, with its arguments."""

    def __init__(self, label='rec'):
        self.label = label
        self.calls = []

    def on_start(self, container):
        self.calls.append(('on_start', container))

    def on_stop(self, container):
        self.calls.append(('on_stop', container))

    def on_interface_installation(self, interface):
        self.calls.append(('on_interface_installation', interface))

    def on_error(self, exc, context):
        self.calls.append(('on_error', exc, context))

    def on_http_request(self, request, response, duration):
        self.calls.append(('on_http_request', request, response, duration))

    def hooks(self, name):
        return [c[1:] for c in self.calls if c[0] == name]


class Exploding(fannode.Plugin):
    """Every hook raises."""

    def __init__(self):
        self.tries = 0

    def _explode(self, *args):
        self.tries += 1
        raise RuntimeError('plugin bug')

    on_start = on_stop = on_interface_installation = on_error = on_http_request = _explode


class NotAPlugin:
    pass


def isolated(func, *args, **kwargs):
    """Run `func` in a context of its own, as the server runs each request: trace ids and
    the current client it sets must not stay behind for the tests after this one."""
    return contextvars.Context().run(func, *args, **kwargs)


def get(container, path, **kwargs):
    """A request through the Web interface's WSGI application."""
    return isolated(Client(container.interfaces['Web'].wsgi).get, path, **kwargs)


@pytest.fixture
def start():
    url = 'local://plugins-%s' % uuid.uuid4().hex[:8]
    started, clients = [], []

    def start(*services, plugins=(), **section):
        interfaces = {cls.__name__: {'class': cls, **section} for cls in services}
        config = Config({'interfaces': interfaces, 'plugins': list(plugins)}, '<test>')
        container = ServiceContainer(config, LocalRegistry(url), events=LocalEvents(url))
        container.start()
        started.append(container)
        client = RpcClient(LocalRegistry(url))
        clients.append(client)
        container.caller = client
        return container

    yield start
    for container in started:
        container.stop(timeout=1.0)
    for client in clients:
        client.close()
        client.registry.close()


def test_lifecycle_hooks_get_the_container_and_each_interface(start):
    rec = Recorder()
    container = start(Greeting, Listen, plugins=[rec])
    assert rec.hooks('on_interface_installation') == [(container.interfaces['Greeting'],),
                                                      (container.interfaces['Listen'],)]
    assert rec.hooks('on_start') == [(container,)]
    assert rec.calls[-1][0] == 'on_start'  # after the interfaces are installed
    container.stop(timeout=1.0)
    assert rec.hooks('on_stop') == [(container,)]


def test_on_error_gets_an_unexpected_rpc_exception_with_its_context(start):
    rec = Recorder()
    container = start(Greeting, plugins=[rec])
    greeting = container.caller.proxy('Greeting')

    def calls():
        trace.set_id('trace-rpc-1')
        with pytest.raises(fannode.RemoteError.ValueError):
            greeting.fail()
        assert greeting.greet(name='Joe') == 'Hi, Joe!'
        with pytest.raises(fannode.RemoteError.KeyError):  # declared in raises=: an answer, not an error
            greeting.lookup(key='k')
        with pytest.raises(fannode.BadArguments):  # refused before it ran
            greeting.greet(nam='x')
    isolated(calls)
    [(exc, context)] = rec.hooks('on_error')
    assert isinstance(exc, ValueError) and str(exc) == 'boom'
    assert context == {'kind': 'rpc', 'name': 'Greeting.fail', 'service': 'Greeting',
                       'trace_id': 'trace-rpc-1', 'instance_id': container.id}


def test_on_error_gets_each_failed_attempt_of_an_event_handler(start):
    rec = Recorder()
    container = start(Listen, plugins=[rec])
    event = fannode.Event.new('fails', {'n': 7}, 'trace-ev-1', 'test')
    container.events.emit(event)
    errors = wait_until(lambda: len(rec.hooks('on_error')) == 2 and rec.hooks('on_error'), timeout=5,
                        message='two failed attempts reported')
    for attempt, (exc, context) in enumerate(errors, 1):
        assert isinstance(exc, RuntimeError) and str(exc) == 'cannot handle 7'
        assert context == {'kind': 'event', 'name': 'Listen.on_fails', 'service': 'Listen',
                           'trace_id': 'trace-ev-1', 'instance_id': container.id,
                           'event': 'fails', 'event_id': event.id, 'attempt': attempt}


def test_http_requests_and_500s_reach_the_plugins(start):
    rec = Recorder()
    container = start(Web, plugins=[rec], host='127.0.0.1', port=0)
    assert get(container, '/hello').status_code == 200
    boom = get(container, '/boom', headers={'X-Trace-Id': 'trace-web-1'})
    assert boom.status_code == 500
    (request, response, duration), (request2, response2, _) = rec.hooks('on_http_request')
    assert (request.path, response.status_code) == ('/hello', 200)
    assert 0 < duration < 5
    assert (request2.path, response2.status_code) == ('/boom', 500)
    [(exc, context)] = rec.hooks('on_error')
    assert str(exc) == 'web boom'
    assert context == {'kind': 'http', 'name': 'GET /boom', 'service': 'Web', 'trace_id': 'trace-web-1',
                       'instance_id': container.id, 'method': 'GET', 'path': '/boom'}


def test_a_failing_plugin_is_logged_once_per_hook_and_breaks_nothing(start, caplog):
    boom, rec = Exploding(), Recorder()
    with caplog.at_level(logging.INFO):
        container = start(Greeting, Web, plugins=[boom, rec], host='127.0.0.1', port=0)
        greeting = container.caller.proxy('Greeting')
        for _ in range(3):
            with pytest.raises(fannode.RemoteError.ValueError):
                greeting.fail()
            assert greeting.greet(name='Ann') == 'Hi, Ann!'
            assert get(container, '/hello').data == b'hello'
    assert len(rec.hooks('on_error')) == 3  # the plugins after it still run
    failures = [r for r in caplog.records if r.name == 'fannode.core.plugins' and r.levelno >= logging.ERROR]
    hooks = sorted(r.getMessage().split(': ')[1].split()[0] for r in failures)
    assert hooks == ['on_error', 'on_http_request', 'on_interface_installation', 'on_start']
    assert all('test_plugins:Exploding' in r.getMessage() and r.exc_info for r in failures)
    assert boom.tries == 2 + 1 + 3 + 3  # two interfaces, one start, three errors, three requests


def write(tmp_path, text):
    path = tmp_path / 'service.yml'
    path.write_text('interfaces:\n  Greeting:\n    class: test_plugins:Greeting\n' + text)
    return path


@pytest.mark.parametrize('text, message', [
    ('plugins:\n  - nosuch:Plugin\n',
     "service.yml:5: plugins.0: cannot import 'nosuch:Plugin': No module named 'nosuch'"),
    ('plugins:\n  - test_plugins:Recorder\n  - class: test_plugins:NotAPlugin\n',
     'service.yml:6: plugins.1.class: test_plugins:NotAPlugin is not a fannode.Plugin subclass'),
    ('plugins:\n  - class: test_plugins:Recorder\n    colour: red\n',
     "service.yml:5: plugins.0: cannot create test_plugins:Recorder: TypeError: "
     "Recorder.__init__() got an unexpected keyword argument 'colour'"),
    ('plugins:\n  - label: x\n', "service.yml:5: plugins.0.class: missing"),
    ('plugins:\n  - 42\n',
     "service.yml:5: plugins.0: expected 'module:Class' or a mapping with a 'class' key"),
    ('plugins: test_plugins:Recorder\n', 'service.yml:4: plugins: expected list or null, got str'),
    ('plugin:\n  - test_plugins:Recorder\n', "did you mean 'plugins'?"),
])
def test_config_mistakes_are_one_line_naming_file_line_and_key(tmp_path, text, message):
    with pytest.raises(fannode.ConfigError) as e:
        ServiceContainer(load_config(write(tmp_path, text)), LocalRegistry('local://plugins-config'))
    assert message in str(e.value)
    assert '\n' not in str(e.value)


def test_config_plugins_get_their_options(tmp_path):
    path = write(tmp_path, 'plugins:\n  - test_plugins:Recorder\n'
                           '  - {class: test_plugins:Recorder, label: two}\n')
    container = ServiceContainer(load_config(path), LocalRegistry('local://plugins-options'))
    assert [p.label for p in container.plugins.plugins] == ['rec', 'two']
    first = container.plugins.plugins[0]
    assert first.hooks('on_interface_installation') == [(container.interfaces['Greeting'],)]
    container.stop(timeout=0)


def test_the_sentry_plugin_without_sentry_sdk_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'sentry_sdk', None)  # import fails as if not installed
    path = write(tmp_path, 'plugins:\n  - class: fannode.contrib.sentry:SentryPlugin\n'
                           '    dsn: http://k@127.0.0.1:9/1\n')
    with pytest.raises(fannode.ConfigError) as e:
        ServiceContainer(load_config(path), LocalRegistry('local://plugins-sentry'))
    assert str(e.value) == ('%s:5: plugins.0: fannode.contrib.sentry:SentryPlugin needs sentry-sdk '
                            '(pip install sentry-sdk)' % path)
