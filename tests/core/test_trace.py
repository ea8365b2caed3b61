"""Trace context in one process: spans nest, greenlets a handler spawns keep its trace,
print() lines carry it, and metrics count RPC, events and HTTP apart."""
import logging

import gevent
from werkzeug.routing import Map, Rule

import fannode
from fannode.core import trace

log = logging.getLogger('traced')


class Worker(fannode.Interface):
    @fannode.rpc()
    def fan_out(self):
        def later():
            gevent.sleep(0.01)
            log.info('from a spawned greenlet')
        gevent.spawn(later).join()
        self.metrics.counter('fanned').inc()
        return trace.get_id()


class Front(fannode.WebInterface):
    url_map = Map([Rule('/go', endpoint='go')])

    def go(self, request):
        return self.proxy('Worker').fan_out()


def test_spawned_greenlets_keep_the_handlers_trace(fannode_cluster):
    cluster = fannode_cluster(Worker)
    trace_id = cluster.proxy('Worker').fan_out()
    cluster.assert_logged('from a spawned greenlet', trace_id=trace_id)


def test_http_rpc_and_own_metrics_are_counted_apart(fannode_cluster):
    cluster = fannode_cluster(Worker, Front)
    web = cluster.web('Front')
    response = web.get('/go', headers={'X-Trace-Id': 'feed0001'})
    assert response.text == 'feed0001'  # the incoming trace id went all the way
    metrics = cluster.proxy('Worker').get_metrics()
    assert metrics['rpc']['Worker.fan_out']['calls'] == 1 and metrics['custom'] == {'fanned': 1}
    front = cluster.proxy('Front').get_metrics()
    assert front['http']['GET /go']['calls'] == 1 and front['process']['greenlets'] > 0


def test_spans_nest_and_report_to_the_sink():
    seen = []
    trace.sink = seen.append
    try:
        outer = trace.begin('t1')
        inner = trace.begin(trace.get_id(), trace.get_span())
        inner.end('rpc', 'A.b')
        outer.end('http', 'GET /', 'error', code=500)
    finally:
        trace.sink = None
    assert [(s['name'], s['trace'], s['status']) for s in seen] == [('A.b', 't1', 'ok'), ('GET /', 't1', 'error')]
    assert seen[0]['parent'] == seen[1]['span'] and seen[1]['parent'] == '' and seen[1]['code'] == 500


def test_a_background_loop_started_inside_a_trace_is_outside_it():
    trace.inherit()  # as every fannode process does: spawned work stays in its trace
    seen = {}
    trace.set_id('a' * 32)
    try:
        inside = gevent.spawn(lambda: seen.setdefault('spawned', trace.get_id()))
        loop = trace.background(lambda: seen.setdefault('background', trace.get_id()))
        gevent.joinall([inside, loop])
    finally:
        trace.set_id('')
    assert seen == {'spawned': 'a' * 32, 'background': ''}
