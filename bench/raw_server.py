"""The anchor's server: plain blocking pyzmq REP, msgpack in and out, nothing else.

    python -m bench.raw_server PORT

Prints "ready" once bound; answers {'name': 'Joe'} with 'Hi, Joe!' until killed.
"""
import signal
import sys

import msgpack
import zmq


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = int(sys.argv[1])
    context = zmq.Context()
    socket = context.socket(zmq.REP)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind('tcp://127.0.0.1:%d' % port)
    print('ready', flush=True)
    try:
        while True:
            request = msgpack.unpackb(socket.recv())
            socket.send(msgpack.packb('Hi, %s!' % request['name']))
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        socket.close(linger=0)
        context.term()


if __name__ == '__main__':
    main()
