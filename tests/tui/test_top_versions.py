"""Versions in `fannode top`: a version column once a service announces versions (each
instance's; on the service row, where unpinned calls go), and `v`, which switches the
selected service's route: the next older live version, then back to the newest."""
from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest

from top_helpers import FixedSource, column, run, table_rows, until

from conftest import Cluster, wait_until
from fannode.discovery.base import InstanceInfo
from fannode.sharedconfig import get_shared_config
from fannode.tui.app import TopApp
from fannode.tui.rows import Rates, Snapshot, build_rows
from fannode.tui.source import TopSource
from fannode.tui.versions import RouteSwitch


def _info(n: int, version: str, ready: bool = True) -> InstanceInfo:
    return InstanceInfo(id='%02d' % n * 16, endpoint='tcp://127.0.0.1:%d' % (40000 + n), services=['Greeting'],
                        pid=4100 + n, host='vm', started=1.0, ready=ready, version=version)


def _rows(routes=None, versions=('1.0.0', '1.0.0', '2.0.0')):
    services = {'Greeting': [_info(i, v) for i, v in enumerate(versions, 1)]}
    rows = build_rows(services, {}, None, Rates(), 0.0, 10.0, 'vm', routes=routes)
    return {r.key: r for r in rows}


def test_rows_say_which_version_each_runs_and_where_unpinned_calls_go():
    rows = _rows()
    assert rows['s:Greeting'].version == '→ 2.0.0 (newest)'
    instances = [r for r in rows.values() if r.kind == 'instance']
    assert [(r.version, r.serving) for r in instances] == [('1.0.0', False), ('1.0.0', False), ('2.0.0', True)]
    rows = _rows({'Greeting': '1'})
    assert rows['s:Greeting'].version == '→ 1.0.0 (route 1)'
    assert [r.serving for r in rows.values() if r.kind == 'instance'] == [True, True, False]


def test_no_versions_no_column():
    rows = _rows(versions=('', ''))
    assert all(r.version == '' for r in rows.values())


class VersionSource(FixedSource):
    def route(self, row) -> None:
        self.calls.append(('route', row.key))


def test_the_version_column_and_the_v_key():
    rows = tuple(_rows().values())
    source = VersionSource(Snapshot(rows, 'hub://127.0.0.1:4010', services=1, instances=3))
    app = TopApp(source)

    async def test(pilot):
        await until(pilot, lambda: 's:Greeting' in table_rows(app), message='the rows')
        assert column(app.main.table, 'version')[:4] == ['→ 2.0.0 (newest)', '1.0.0', '1.0.0', '2.0.0']
        await pilot.press('v')
        await until(pilot, lambda: ('route', 's:Greeting') in source.calls, message='v to ask the source')
    run(app, test)


def test_v_cycles_through_the_live_versions_then_back_to_the_newest():
    url = 'local://top-routes-%s' % uuid.uuid4().hex[:8]
    keep = get_shared_config(url)
    switch = RouteSwitch(url)
    live = [SimpleNamespace(version=v, ready=True) for v in ('1.0.0', '2.0.0', '1.5.0')]
    try:
        assert switch.switch('Greeting', live) == 'Greeting: unpinned calls go to 1.5.0 (route 1.5.0)'
        assert keep.get('fannode.route.Greeting') == '1.5.0'
        assert switch.switch('Greeting', live) == 'Greeting: unpinned calls go to 1.0.0 (route 1.0.0)'
        assert switch.switch('Greeting', live) == 'Greeting: route cleared: unpinned calls go to the newest, 2.0.0'
        assert keep.get('fannode.route.Greeting') is None
        assert switch.routes({'Greeting': live, 'Plain': [SimpleNamespace(version='')]}) == {'Greeting': None}
        with pytest.raises(Exception, match='Greeting runs one version \\(1.0.0\\): no other version'):
            switch.switch('Greeting', live[:1])
    finally:
        switch.close()
        keep.close()


@pytest.mark.e2e
def test_v_switches_the_route_of_a_live_cluster(tmp_path):
    cluster = Cluster(tmp_path)
    try:
        cluster.start_hub()
        cluster.start_instance('demo-versioned.yml', env={'VERSION': '1.0.0'})
        cluster.start_instance('demo-versioned.yml', env={'VERSION': '2.0.0'})
        wait_until(lambda: cluster.count('Greeting') == 2, 30, message='both versions registered')
        source = TopSource(cluster.url, str(tmp_path / 'node.yml'), 0.3)
        source.start()
        app = TopApp(source)

        def route():
            return json.loads(cluster.run('route', 'Greeting', '--json').stdout)['route']

        async def test(pilot):
            await until(pilot, lambda: app.main.table.keys[:1] == ['s:Greeting'] and
                        'version' in [c.key for c in app.main.table.columns], 60, message='the version column')
            await until(pilot, lambda: app.main.table.text('s:Greeting', 'version') == '→ 2.0.0 (newest)', 60)
            await pilot.press('v')
            await until(pilot, lambda: app.main.table.text('s:Greeting', 'version') == '→ 1.0.0 (route 1.0.0)',
                        60, message='the route to show')
            assert route() == '1.0.0'
            await pilot.press('v')
            await until(pilot, lambda: app.main.table.text('s:Greeting', 'version') == '→ 2.0.0 (newest)',
                        60, message='the route cleared')
            assert route() is None
        try:
            run(app, test)
        finally:
            source.stop()
    finally:
        cluster.stop()
