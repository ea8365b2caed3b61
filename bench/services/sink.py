"""The consumer the events benchmark feeds: counts what it handled."""
import fannode


class Sink(fannode.Interface):
    handled = 0

    @fannode.event('bench.tick')
    def on_tick(self, event):
        Sink.handled += 1

    @fannode.rpc()
    def count(self):
        return Sink.handled
