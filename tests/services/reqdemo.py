"""A service for `fannode request`'s tests: what a handler sees of its request."""
import fannode


class Headers(fannode.Interface):
    """Shows the user headers of the request being handled."""

    @fannode.rpc()
    def show(self):
        return fannode.headers()

    @fannode.rpc()
    def nested(self):
        """Its own call's headers: a handler's calls do not forward its caller's."""
        return {'mine': fannode.headers(), 'nested': fannode.proxy('Headers').show()}
