"""The consumer of the events case, on either backend (hub or RabbitMQ): counts what it handled.

Each event's body is {'n': i, 'end': E}: when the count reaches E (the emitter's total at
the end of its run), it prints "done E <time.time()>". The backend acks each event right
after its handler returns, so this is the moment of the last ack, give or take a loop turn.
"""
import time

import fannode


class Sink(fannode.Interface):
    handled = 0

    @fannode.event('bench.tick')
    def on_tick(self, event):
        Sink.handled += 1
        if Sink.handled == event['end']:
            print('done %d %.6f' % (Sink.handled, time.time()), flush=True)
