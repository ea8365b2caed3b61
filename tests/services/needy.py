"""Services with dependencies, for tests/e2e/test_dependencies.py: Orders cannot work
without Greeting (a hard dependency, declared on the class); Front needs Greeting too and
would like Listen (declared in tests/conf/needy.yml)."""
from werkzeug.routing import Map, Rule

import fannode


class Orders(fannode.Interface):
    dependencies = {'hard': ['Greeting']}

    @fannode.rpc()
    def place(self, name):
        print('placing an order for %s' % name, flush=True)
        return self.proxy('Greeting').greet(name=name)


class Front(fannode.WebInterface):
    url_map = Map([Rule('/order', endpoint='order')])

    def order(self, request):
        return self.proxy('Orders').place(name=request.args['name'])
