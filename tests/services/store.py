"""A sharded service the sharding tests run as real instances: calls and events of one
store go to one instance."""
import os

import fannode


class Store(fannode.Interface):
    """Keeps stores; each store is one instance's."""

    @fannode.rpc(shard='store_id')
    def owner(self, store_id):
        """Which instance served this store: the key routes the call."""
        return self.container.id

    @fannode.event('order.*', shard='store')
    def on_order(self, event):
        with open(os.environ['STORE_LOG'], 'a') as log:  # one line each: appends of a line do not mix
            log.write('%s %s %s\n' % (self.container.id, event.body['store'], event.body['n']))


from werkzeug.routing import Map, Rule  # noqa: E402 - the web half of the example

from fannode.web import sharded  # noqa: E402


class StoreWeb(fannode.WebInterface):
    """Items of stores over HTTP: each store's URLs served by the instance owning it."""

    url_map = Map([Rule('/store/<int:store>/item/<int:item>', endpoint='item', methods=['GET', 'PUT']),
                   Rule('/hello', endpoint='hello')])

    @sharded('store')
    def item(self, request, store, item):
        return {'served_by': self.container.id, 'store': store, 'item': item, 'method': request.method,
                'body': request.get_data(as_text=True), 'q': request.args.get('q')}

    def hello(self, request):
        return 'hello'
