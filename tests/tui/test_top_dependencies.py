"""`fannode top`'s missing-dependency and breaker columns, and not-ready instances, from
what discovery and get_metrics say (fannode.tui.rows and cells, no I/O)."""
from __future__ import annotations

from fannode.discovery.base import InstanceInfo
from fannode.tui.cells import cells
from fannode.tui.rows import Rates, breakers, build_rows, missing


def info(n: int, ready: bool = True, **meta) -> InstanceInfo:
    return InstanceInfo(id='%02d' % n * 16, endpoint='tcp://127.0.0.1:%d' % (40000 + n), services=['Orders'],
                        pid=100 + n, host='vm', ready=ready, meta=meta)


def rows(instances, answers):
    built = build_rows({'Orders': instances}, answers, None, Rates(), 0.0, 0.0, 'vm')
    return {r.key: cells(r) for r in built}


def breaker(state, **endpoints):
    return {'state': state, 'failures': 0, 'retry_in': None,
            'endpoints': {e: {'state': s, 'failures': 0} for e, s in endpoints.items()}}


def test_breakers_not_closed_by_service():
    metrics = {'breakers': {
        'Store': breaker('closed', a='closed', b='closed'),
        'Mailer': breaker('open', a='open'),
        'Billing': breaker('closed', a='open', b='closed', c='half-open'),  # some endpoints only
        'Audit': breaker('half-open'),
        'Odd': 'not a breaker', 3: {'state': 'open'},  # another process's answer: checked, not trusted
    }}
    assert breakers(metrics) == (('Audit', 'half-open'), ('Billing', '2/3 open'), ('Mailer', 'open'))
    assert breakers({'rpc': {}}) == () and breakers({'breakers': ['x']}) == ()  # older instances: none


def test_missing_dependencies_and_which_are_hard():
    deps = {'hard': ['Store'], 'soft': ['Mailer']}
    assert missing(info(1, dependencies=deps, missing=['Store', 'Mailer'])) == (('Store', True), ('Mailer', False))
    assert missing(info(1, dependencies=deps, missing=[])) == ()
    assert missing(info(1)) == ()  # declares nothing, announces nothing
    assert missing(info(1, missing='Store')) == ()


def test_an_instance_missing_a_hard_dependency_is_not_ready_and_red():
    deps = {'hard': ['Store'], 'soft': ['Mailer']}
    a = info(1, ready=False, dependencies=deps, missing=['Store', 'Mailer'])
    b = info(2, ready=False, dependencies=deps, missing=['Store'])
    shown = rows([a, b], {a.id: {'breakers': {'Mailer': breaker('open')}}, b.id: {}})
    assert shown['i:Orders:' + '01' * 16]['state'] == ('not ready', 'bold yellow')
    assert shown['i:Orders:' + '01' * 16]['deps'] == ('Store ✗ Mailer ✗', 'bold red')
    assert shown['i:Orders:' + '01' * 16]['breakers'] == ('Mailer open', 'bold red')
    assert shown['i:Orders:' + '02' * 16]['breakers'] == ('', '')
    # none of its instances is ready: the service is not ready
    assert shown['s:Orders']['state'] == ('not ready', 'bold yellow')
    assert shown['s:Orders']['deps'] == ('Store ✗ Mailer ✗', 'bold red')


def test_a_missing_soft_dependency_is_yellow_and_leaves_the_instance_running():
    a = info(1, dependencies={'hard': [], 'soft': ['Mailer']}, missing=['Mailer'])
    shown = rows([a], {a.id: {'breakers': {'Mailer': breaker('half-open')}}})
    assert shown['s:Orders']['state'][0] == 'running'
    assert shown['s:Orders']['deps'] == ('Mailer ✗', 'yellow')
    assert shown['s:Orders']['breakers'] == ('Mailer half-open', 'yellow')


def test_services_that_declare_nothing_show_nothing_new():
    a = info(1)
    shown = rows([a], {a.id: {'rpc': {}}})
    assert [shown['s:Orders'][c] for c in ('state', 'deps', 'breakers')] == [('running', 'green'), ('', ''), ('', '')]


# -- in the app (Pilot, on fixed data) ---------------------------------------------

def header(app) -> list[str]:
    return [c.label for c in app.main.table.columns]


def test_the_dependency_columns_come_with_the_first_trouble_and_stay():
    from top_helpers import FixedSource, cell, fixed_snapshot, run, table_rows, until

    from fannode.tui.app import TopApp

    source = FixedSource()  # nobody declares dependencies or has a breaker open

    async def test(pilot):
        app = pilot.app
        assert 'missing deps' not in header(app) and 'breakers' not in header(app)
        assert len(table_rows(app)['s:Greeting']) == 14  # the table as it always was
        source.deliver('snapshot', fixed_snapshot(deps=True))
        await until(pilot, lambda: 'breakers' in header(app), message='the dependency columns')
        assert header(app)[4:7] == ['state', 'missing deps', 'breakers']
        # the service: its soft Mailer missing on every instance, the worst of their breakers
        assert [cell(app, 's:Greeting', c) for c in ('state', 'deps', 'breakers')] == [
            'degraded', 'Mailer ✗', 'Mailer open']
        assert cell(app, 'i:Greeting:' + '03' * 16, 'breakers') == 'Mailer half-open'
        listen = 'i:Listen:' + '12' * 16
        assert [cell(app, listen, c) for c in ('state', 'deps')] == ['not ready', 'Store ✗']
        assert [cell(app, 's:Listen', c) for c in ('state', 'deps')] == ['degraded', 'Store ✗']
        source.deliver('snapshot', fixed_snapshot(calls=5))  # all fine again: the columns stay, empty
        await until(pilot, lambda: cell(app, 's:Greeting', 'deps') == '', message='Mailer back')
        assert 'breakers' in header(app) and cell(app, 's:Greeting', 'breakers') == ''
    run(TopApp(source), test)
