"""The web service the web case of `python -m bench` loads: as small as a fannode web service gets."""
import os

from werkzeug.routing import Map, Rule

import fannode


class Hello(fannode.WebInterface):
    url_map = Map([Rule('/hello', endpoint='hello'), Rule('/pid', endpoint='pid')])

    def hello(self, request):
        return 'Hello'

    def pid(self, request):
        return str(os.getpid())
