"""The web anchor: a hand-tuned gevent.pywsgi + werkzeug app, nothing of fannode.

    python -m bench.web_baseline PORT

GET /hello answers 'Hello'; GET /pid answers this process's PID (to see which of two
processes sharing the port served a connection). Binds 127.0.0.1:PORT with SO_REUSEADDR
and SO_REUSEPORT, so two of these share one port and the kernel spreads connections over
them. No access log (log=None, and log_request does nothing); TCP_NODELAY on every
accepted connection. Prints "ready" once listening; SIGTERM keeps its default action.
"""
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402
from werkzeug.exceptions import HTTPException  # noqa: E402
from werkzeug.routing import Map, Rule  # noqa: E402
from werkzeug.wrappers import Request, Response  # noqa: E402


def hello(request: Request) -> Response:
    return Response('Hello')


def pid(request: Request) -> Response:
    return Response(str(os.getpid()))


url_map = Map([Rule('/hello', endpoint=hello), Rule('/pid', endpoint=pid)])


def app(environ, start_response):
    request = Request(environ)
    try:
        endpoint, args = url_map.bind_to_environ(environ).match()
        response = endpoint(request, **args)
    except HTTPException as e:
        response = e.get_response(environ)
    return response(environ, start_response)


class Handler(WSGIHandler):
    def handle(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()

    def log_request(self):
        pass  # with log=None gevent still formats an access line for a no-op log: ~7% of the CPU


def main() -> None:
    port = int(sys.argv[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(('127.0.0.1', port))
    sock.listen(1024)
    sock.setblocking(False)
    server = WSGIServer(sock, app, handler_class=Handler, log=None)
    server.start()
    print('ready', flush=True)
    server.serve_forever()


if __name__ == '__main__':
    main()
