"""The raw pika anchor's consumer for the events case of `python -m bench`: plain blocking pika, as one
would write it without a framework.

    python bench/services/pika_consumer.py AMQP_URL

Declares the topic exchange `bench.raw` and the durable queue `bench.raw` bound to
`bench.tick`, consumes with prefetch 100 and a manual ack per message, and prints
"ready" once consuming. Each message is {'n': i, 'end': E}: when the count of acked
messages reaches E (the publisher's total at the end of its run), it prints
"done E <time.time()>", the moment of the last ack. SIGTERM keeps its default action.
"""
import sys
import time

import msgpack
import pika

EXCHANGE = QUEUE = 'bench.raw'


def main() -> None:
    connection = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
    channel = connection.channel()
    channel.exchange_declare(EXCHANGE, 'topic', durable=True)
    channel.queue_declare(QUEUE, durable=True)
    channel.queue_bind(QUEUE, EXCHANGE, routing_key='bench.tick')
    channel.basic_qos(prefetch_count=100)
    acked = 0

    def on_message(ch, method, properties, body):
        nonlocal acked
        end = msgpack.unpackb(body)['end']
        ch.basic_ack(method.delivery_tag)
        acked += 1
        if acked == end:
            print('done %d %.6f' % (acked, time.time()), flush=True)

    channel.basic_consume(QUEUE, on_message)
    print('ready', flush=True)
    channel.start_consuming()


if __name__ == '__main__':
    main()
