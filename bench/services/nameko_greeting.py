"""The nameko anchor's service for the rpc case of `python -m bench`: the same greet(name) as
bench/services/greeting.py, run by `nameko run` in the anchors venv, nameko's defaults."""
from nameko.rpc import rpc


class Greeting:
    name = 'greeting'

    @rpc
    def greet(self, name):
        return 'Hi, %s!' % name
