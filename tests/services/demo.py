"""Services the tests run as real instances."""
import os

import gevent
from werkzeug.routing import Map, Rule

import fannode
from fannode.core import trace


class Greeting(fannode.Interface):
    """Says hi."""

    def apply_config(self, config):
        super().apply_config(config)
        self.greeting = config.get('greeting', 'Hi')
        self.marker = config.get('marker')

    def on_start(self):
        self._mark('started')

    def on_stop(self):
        self._mark('stopped')

    @fannode.rpc()
    def greet(self, name):
        """Greet somebody by name."""
        print('Saying hi to %s' % name, flush=True)
        self.emit('greeted', {'name': name})
        return '%s, %s!' % (self.greeting, name)

    @fannode.rpc()
    def whoami(self):
        return os.getpid()

    @fannode.rpc(raises=KeyError)
    def lookup(self, key):
        raise KeyError(key)

    @fannode.rpc()
    def fail(self):
        raise ValueError('boom')

    @fannode.rpc()
    def slow(self, seconds):
        gevent.sleep(seconds)
        return seconds

    @fannode.rpc()
    def echo(self, value=None):
        return value

    @fannode.rpc()
    def trace_id(self):
        return trace.get_id()

    @fannode.rpc()
    def relay(self, service, name):
        """Call another service with fannode.proxy; returns its reply and both trace ids."""
        reply = fannode.proxy(service).greet(name=name)
        return {'reply': reply, 'here': trace.get_id(),
                'there': self.proxy(service).trace_id()}

    @fannode.rpc()
    def emit_many(self, type, n, sleep=0):
        for i in range(n):
            self.emit(type, {'n': i, 'sleep': sleep})
        return n

    def not_exposed(self):
        return 'secret'

    def _mark(self, what):
        if self.marker:
            with open(self.marker, 'a') as f:
                f.write(what + '\n')


class Listen(fannode.Interface):
    """Handles the events Greeting emits, and a few that fail."""

    @fannode.event('greeted')
    def on_greeted(self, event):
        print('Somebody greeted %s [%s]' % (event['name'], event.trace_id), flush=True)

    @fannode.event('greeted', broadcast=True)
    def on_greeted_everywhere(self, event):
        print('Everyone heard of %s' % event['name'], flush=True)

    @fannode.event('count.*')
    def on_count(self, event):
        gevent.sleep(event.get('sleep', 0))
        print('count %s %s' % (event.type, event['n']), flush=True)

    @fannode.event('fails', retry=2)
    def on_fails(self, event):
        print('failing attempt %d' % event.attempt, flush=True)
        raise ValueError('cannot handle %s' % event.id)


class Web(fannode.WebInterface):
    """HTTP in front of Greeting, and the error cases."""

    url_map = Map([
        Rule('/greet', endpoint='greet'),
        Rule('/pid', endpoint='pid'),
        Rule('/json/<int:n>', endpoint='as_json'),
        Rule('/boom', endpoint='boom'),
        Rule('/lookup', endpoint='lookup'),
        Rule('/only-post', endpoint='pid', methods=['POST']),
        Rule('/slow', endpoint='slow'),
    ])

    def greet(self, request):
        name = request.args['name']
        print('About to greet %s [%s]' % (name, trace.get_id()), flush=True)
        return self.proxy('Greeting').greet(name=name)

    def pid(self, request):
        return str(os.getpid())

    def as_json(self, request, n):
        return {'n': n, 'trace_id': trace.get_id()}

    def boom(self, request):
        raise RuntimeError('boom')

    def lookup(self, request):
        return self.proxy('Greeting').lookup(key=request.args.get('key', 'k'))

    def slow(self, request):
        print('slow request started', flush=True)
        gevent.sleep(float(request.args.get('seconds', 1)))
        return 'done'
