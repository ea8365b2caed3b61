"""A chain of services for deadline tests: Front calls Middle, Middle calls Back. Each
says, in its log, the budget it received (`fannode.time_left()`), so a test of real
processes can read that a nested call got only what was left."""
import logging
import time

import gevent

import fannode

log = logging.getLogger('chain')


def _left_ms() -> int:
    left = fannode.time_left()
    return -1 if left is None else int(left * 1000)


class Front(fannode.Interface):
    @fannode.rpc()
    def start(self, seconds=1.0):
        log.info('Front.start: %d ms left', _left_ms())
        return self.proxy('Middle', timeout=10).pass_on(seconds=seconds)

    @fannode.rpc()
    def left(self):
        """What Middle's handler had left when called from here (with a 10 s timeout of its own)."""
        return {'here': fannode.time_left(), 'there': self.proxy('Middle', timeout=10).left()}


class Middle(fannode.Interface):
    @fannode.rpc()
    def pass_on(self, seconds):
        log.info('Middle.pass_on: %d ms left', _left_ms())
        return self.proxy('Back', timeout=10).work(seconds=seconds)

    @fannode.rpc()
    def left(self):
        return fannode.time_left()


class Back(fannode.Interface):
    """Counts the work it ran, so a test can tell work refused from work done."""

    def on_start(self):
        self.ran = 0

    @fannode.rpc()
    def work(self, seconds):
        self.ran += 1
        log.info('Back.work: %d ms left (budget received)', _left_ms())
        gevent.sleep(seconds)
        return seconds

    @fannode.rpc()
    def runs(self):
        return self.ran

    @fannode.rpc()
    def clock(self):
        """The deadline as wall-clock time, and now."""
        return {'deadline': fannode.deadline(), 'now': time.time()}
