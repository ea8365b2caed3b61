"""A service for the circuit breaker and retry tests: it says which process answered,
can be made slow, and has one method of each kind (idempotent or not)."""
import os

import gevent

import fannode


class Store(fannode.Interface):
    """`slow` decides whether a call takes long (set by in-process tests, per instance)."""

    slow = 0.0

    def on_start(self):
        self.calls = 0

    @fannode.rpc(idempotent=True)
    def get(self, seconds=0.0):
        """Reads only: safe to run twice."""
        return self._run('get', seconds)

    @fannode.rpc()
    def put(self, seconds=0.0):
        """Writes: never retried once sent."""
        return self._run('put', seconds)

    @fannode.rpc()
    def fail(self):
        self.calls += 1
        raise ValueError('no such key')

    def _run(self, name, seconds):
        self.calls += 1
        print('%s started in %d' % (name, os.getpid()), flush=True)
        gevent.sleep(seconds or self.slow)
        return os.getpid()
