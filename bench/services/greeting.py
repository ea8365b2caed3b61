"""The service the benchmark calls: as small as a fannode service gets."""
import fannode


class Greeting(fannode.Interface):
    @fannode.rpc()
    def greet(self, name):
        return 'Hi, %s!' % name
