import fannode


class Greeting(fannode.Interface):
    """Says hi (the workshop's first service)."""

    @fannode.rpc()
    def greet(self, name):
        """Greet somebody by name."""
        print('Saying hi to %s' % name)
        return 'Hi, %s!' % name
