import fannode


class Listen(fannode.Interface):
    """Hears about every greeting (once per greeting, whichever instance gets it)."""

    @fannode.event('greeted')
    def on_greeted(self, event):
        print('Somebody greeted %s' % event['name'])
