"""The anchor's server: plain blocking pyzmq REP, msgpack in and out, nothing else.

    python -m bench.raw_server PORT

Prints "ready" once bound; answers {'name': 'Joe'} with 'Hi, Joe!' and {'body': b} with b
(the payload rows), packed the same way, until SIGTERM, which keeps its default action
(a Python handler would wait for the blocking recv to return).
"""
import sys
from typing import Any

import msgpack
import zmq


def answer(request: dict) -> object:
    return request['body'] if 'body' in request else 'Hi, %s!' % request['name']


def bound(zmq: Any, kind: int) -> Any:
    """A socket of `kind` bound to 127.0.0.1 on the port in argv; "ready" printed.
    `zmq`: the module, plain or zmq.green (bench/green_server.py)."""
    socket = zmq.Context().socket(kind)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind('tcp://127.0.0.1:%d' % int(sys.argv[1]))
    print('ready', flush=True)
    return socket


def main() -> None:
    socket = bound(zmq, zmq.REP)
    while True:
        socket.send(msgpack.packb(answer(msgpack.unpackb(socket.recv()))))


if __name__ == '__main__':
    main()
