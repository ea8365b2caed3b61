"""The service the RPC benchmarks call: as small as a fannode service gets."""
import fannode


class Greeting(fannode.Interface):
    @fannode.rpc()
    def greet(self, name):
        return 'Hi, %s!' % name

    @fannode.rpc()
    def echo(self, body):
        """The payload rows: the body back, as it came."""
        return body
