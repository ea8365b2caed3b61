"""A service that follows a shared config key (tests of shared config)."""
import fannode


class Styled(fannode.Interface):
    """Greets in the style `greeting.style` of the cluster's shared config says."""

    def on_start(self):
        self.style = self.shared_config.get('greeting.style', 'Hi')
        self.shared_config.subscribe('greeting.style', self.on_style)

    def on_style(self, key, value):
        self.style = value or 'Hi'
        print('%s is now %s' % (key, value), flush=True)

    @fannode.rpc()
    def greet(self, name):
        return '%s, %s!' % (self.style, name)
