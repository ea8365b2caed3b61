"""The one exit code table every command uses (fannode.cli.exitcodes, docs/cli.md), and
the error object `--json` prints."""
import pytest

from fannode import exceptions as e
from fannode.cli import exitcodes
from fannode.node.client import NotRunning


@pytest.mark.parametrize('error, code', [
    (e.UsageError('x'), 2), (e.ConfigError('x'), 2), (e.UnknownMethod('x'), 2), (e.BadArguments('x'), 2),
    (e.BadRequest('x'), 2),
    (NotRunning('no node'), 3), (e.RegistryUnavailable('x'), 3), (e.UnknownService('x'), 3),
    (e.UnknownVersion('x'), 3), (e.Unavailable('x'), 3), (e.CircuitOpen('x'), 3), (e.ConnectionLost('x'), 3),
    (e.DiscoveryFailed('x'), 3),
    (e.Timeout('x'), 4), (e.DeadlineExceeded('x'), 4),
    (e.RemoteError('boom', 'ValueError'), 1), (e.FannodeError('x'), 1), (e.BadReply('x'), 1),
])
def test_each_error_has_its_exit_code(error, code):
    assert exitcodes.for_error(error) == code


def test_request_uses_the_same_table():
    from fannode.cli.request import exit_code
    assert exit_code(NotRunning('x')) == exitcodes.UNAVAILABLE
    assert exit_code(e.Timeout('x')) == exitcodes.TIMEOUT


def test_the_json_error_names_kind_code_exception_and_message():
    error = e.UnknownService("no instance of service 'Nope' is registered")
    assert exitcodes.json_error(error, exitcodes.for_error(error)) == {'error': {
        'type': 'unavailable', 'exit': 3, 'exception': 'UnknownService',
        'message': "no instance of service 'Nope' is registered"}}
