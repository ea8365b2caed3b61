"""A service that logs at every level, and a plugin that writes the hooks it sees to a
file: for the tests of plugins, change-loglevel and the shell on real instances."""
import json
import logging
import os

import fannode

log = logging.getLogger('chatty')


class Chatty(fannode.Interface):
    @fannode.rpc()
    def say(self, text):
        log.debug('debug: %s', text)
        log.info('info: %s', text)
        return text

    @fannode.event('chatty.say', broadcast=True)
    def on_say(self, event):  # every instance: what each one logs can be checked
        self.say(event['text'])


class FilePlugin(fannode.Plugin):
    """Appends one JSON line per hook call to $PLUGIN_LOG."""

    def __init__(self, label='file'):
        self.label = label

    def _write(self, hook, **fields):
        with open(os.environ['PLUGIN_LOG'], 'a') as f:
            f.write(json.dumps(dict(fields, hook=hook, label=self.label), default=str) + '\n')

    def on_start(self, container):
        self._write('on_start', instance=container.id)

    def on_stop(self, container):
        self._write('on_stop', instance=container.id)

    def on_interface_installation(self, interface):
        self._write('on_interface_installation', interface=interface.name)

    def on_error(self, exc, context):
        self._write('on_error', exc='%s: %s' % (type(exc).__name__, exc), context=context)


class NotAPlugin:
    pass
