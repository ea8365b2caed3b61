"""The fannode benchmarks: `python -m bench` (or `make bench`).

Every case (rpc, events, payload, web, node) runs fannode beside the tools one would
otherwise pick (raw pyzmq, zmq.green, zerorpc, nameko, raw pika, gevent.pywsgi, processes
started by hand), in one run on one machine, and prints one table of ratios. See
bench/README.md.
"""
