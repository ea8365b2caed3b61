"""A CRUD-style two-door service: each method answers HTTP (curl) and RPC
(`fannode request`, proxies) alike. The store is in memory: one instance's own."""
from werkzeug.routing import Map, Rule

import fannode
from fannode.web import route


class NoSuchItem(KeyError):
    """Part of the contract: a LookupError, so 404 over HTTP, RemoteError.NoSuchItem over RPC."""


class Conflict(Exception):
    http_status = 409  # a contract exception chooses its own status


class Items(fannode.WebInterface):
    """Items of a shop, by id."""

    url_map = Map([Rule('/hello', endpoint='hello')])  # a plain view lives beside the doors

    def apply_config(self, config):
        super().apply_config(config)
        self.items, self.next_id = {}, 1

    def hello(self, request):
        return 'plain view'

    @route('/items', methods=['POST'], status=201)
    @fannode.rpc(raises=Conflict)
    def create(self, name, price=0):
        """Add an item; its id is in the reply."""
        if any(item['name'] == name for item in self.items.values()):
            raise Conflict('an item named %r exists' % name)
        item = self.items[self.next_id] = {'id': self.next_id, 'name': name, 'price': price}
        self.next_id += 1
        return item

    @route('/items')
    @fannode.rpc(idempotent=True)
    def list(self, name=None):
        """All items, or those named `name`."""
        return [i for i in self.items.values() if name is None or i['name'] == name]

    @route('/items/<int:id>')
    @fannode.rpc(raises=NoSuchItem, idempotent=True)
    def get(self, id):
        """One item."""
        return self._item(id)

    @route('/items/<int:id>', methods=['PATCH'])
    @fannode.rpc(raises=NoSuchItem)
    def patch(self, id, name=None, price=None):
        """Change an item's name or price."""
        item = self._item(id)
        if name is not None:
            item['name'] = name
        if price is not None:
            item['price'] = price
        return item

    @route('/items/<int:id>', methods=['DELETE'])
    @fannode.rpc(raises=NoSuchItem)
    def delete(self, id):
        """Remove an item."""
        self._item(id)
        del self.items[id]

    def _item(self, id):
        if id not in self.items:
            raise NoSuchItem('no item %s' % id)
        return self.items[id]
