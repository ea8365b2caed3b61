"""The zerorpc anchor's server for the rpc case of `python -m bench`, in the anchors venv:

    python bench/services/zerorpc_greeting.py PORT

Prints "ready" once bound; answers greet(name) until SIGTERM, which keeps its default action.
"""
import sys

import zerorpc


class Greeting:
    def greet(self, name):
        return 'Hi, %s!' % name


def main() -> None:
    server = zerorpc.Server(Greeting())
    server.bind('tcp://127.0.0.1:%s' % sys.argv[1])
    print('ready', flush=True)
    server.run()


if __name__ == '__main__':
    main()
