import fannode


class Greeting(fannode.Interface):
    """Says hi, and tells everyone it did (the workshop's first service)."""

    @fannode.rpc()
    def greet(self, name):
        """Greet somebody by name."""
        print('Saying hi to %s' % name)
        self.emit('greeted', {'name': name})
        return 'Hi, %s!' % name
