"""The workshop's services, tested with fannode's testing toolkit (the fixtures come
from the fannode pytest plugin). These are the examples docs/testing.md shows."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'services'))

from greeting import Greeting  # noqa: E402
from listen import Listen  # noqa: E402
from web import Web  # noqa: E402


def test_greeting_says_hi_and_emits_greeted(fannode_service):
    greeting = fannode_service(Greeting)
    assert greeting.rpc.greet(name='Joe') == 'Hi, Joe!'
    greeting.assert_emitted('greeted', {'name': 'Joe'})


def test_listen_prints_who_was_greeted(fannode_cluster, capsys):
    cluster = fannode_cluster(Listen)
    cluster.emit('greeted', {'name': 'Joe'})
    cluster.wait_handled('greeted')
    assert 'Somebody greeted Joe' in capsys.readouterr().out


def test_web_answers_with_the_greeting(fannode_service):
    web = fannode_service(Web, mocks={'Greeting.greet': lambda name: 'Hi, %s!' % name})
    response = web.web().get('/greet?name=joe')
    assert (response.status_code, response.text) == (200, 'Hi, joe!')
    web.assert_rpc_called('Greeting.greet', name='joe')


def test_the_three_together(fannode_cluster, capsys):
    cluster = fannode_cluster(Greeting, Listen, Web)
    assert cluster.web().get('/greet?name=ann').text == 'Hi, ann!'
    handled = cluster.wait_handled('greeted')
    assert 'Somebody greeted ann' in capsys.readouterr().out
    call = cluster.assert_rpc_called('Greeting.greet', name='ann')
    assert handled[0].event.trace_id == call.trace_id  # one trace from HTTP to the event
