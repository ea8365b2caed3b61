from setuptools import find_packages, setup

COMMANDS = [
    'attach = fannode.cli.attach:AttachCommand',
    'change-loglevel = fannode.cli.change_loglevel:ChangeLoglevelCommand',
    'config = fannode.cli.config:ConfigCommand',
    'discover = fannode.cli.discover:DiscoverCommand',
    'down = fannode.cli.down:DownCommand',
    'emit = fannode.cli.emit:EmitCommand',
    'gateway = fannode.cli.gateway:GatewayCommand',
    'help = fannode.cli.help:HelpCommand',
    'hub = fannode.cli.hub:HubCommand',
    'inspect = fannode.cli.inspect:InspectCommand',
    'instance = fannode.cli.instance:InstanceCommand',
    'list = fannode.cli.list:ListCommand',
    'ps = fannode.cli.ps:PsCommand',
    'reload = fannode.cli.reload:ReloadCommand',
    'request = fannode.cli.request:RequestCommand',
    'route = fannode.cli.route:RouteCommand',
    'restart = fannode.cli.restart:RestartCommand',
    'rollback = fannode.cli.rollback:RollbackCommand',
    'rollout = fannode.cli.rollout:RolloutCommand',
    'scale = fannode.cli.scale:ScaleCommand',
    'shard = fannode.cli.shard:ShardCommand',
    'shell = fannode.cli.shell:ShellCommand',
    'subscribe = fannode.cli.subscribe:SubscribeCommand',
    'tail = fannode.cli.tail:TailCommand',
    'top = fannode.cli.top:TopCommand',
    'trace = fannode.cli.trace:TraceCommand',
    'up = fannode.cli.up:UpCommand',
]

setup(
    name='fannode',
    version='0.1.0',
    description='Python microservices with almost no boilerplate, and a node that runs them all',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['fannode', 'fannode.*']),
    package_data={'fannode': ['py.typed', 'tui/*.tcss', 'tui/screens/*.tcss']},
    python_requires='>=3.11',
    install_requires=[
        'gevent>=23.9',
        'httptools>=0.6',  # the HTTP/1.1 parser (llhttp, in C) of fannode.web.lean, the default web server
        'kazoo>=2.9',
        'msgpack>=1.0.5',
        'pika>=1.3',
        'psutil>=5.9',
        'prometheus_client>=0.17',  # node.yml `metrics:`: the exposition format Prometheus reads
        'PyYAML>=6.0',
        'python-dotenv>=1.0,<2',  # .env files as docker compose reads them (fannode.node.envfiles)
        'pyzmq>=25.1',
        'rich>=13.0',
        'semantic_version>=2.10',  # version ranges (^1.2, ~1.4, >=1) for pinned calls
        'setproctitle>=1.3',  # a preloaded worker shows its own command in ps, not its template's
        'textual>=8.0',
        'werkzeug>=3.0',
        'circus>=0.19,<0.20',
        'tornado>=6.3,<7',   # circus 0.19's signal handling uses an API tornado 7 removes
        'watchfiles>=0.21',  # autoreload: inotify/FSEvents through Rust notify, asyncio and sync APIs
    ],
    extras_require={
        'test': ['pytest>=7.4', 'hypothesis>=6.80', 'pytest-timeout>=2.1', 'pytest-textual-snapshot>=1.0',
                 'pytest-xdist>=3.5',  # `make test` runs on several workers: most tests wait on processes
                 'sentry-sdk>=2.0',  # so the Sentry plugin's test runs
                 # so the OTLP plugin's test runs (opentelemetry-proto decodes what it sends)
                 'opentelemetry-sdk>=1.20', 'opentelemetry-exporter-otlp-proto-http>=1.20',
                 # the layers (docs/architecture.md) and the types, checked by tests/test_architecture.py
                 'import-linter>=2.0', 'mypy>=1.10', 'types-PyYAML', 'types-psutil'],
        'sentry': ['sentry-sdk>=2.0'],  # fannode.contrib.sentry:SentryPlugin
        # fannode.contrib.otel:OtlpPlugin: spans to an OpenTelemetry collector over OTLP/HTTP
        'otel': ['opentelemetry-sdk>=1.20', 'opentelemetry-exporter-otlp-proto-http>=1.20'],
    },
    entry_points={
        'console_scripts': ['fannode = fannode.cli.main:main'],
        'fannode.commands': COMMANDS,
        'fannode.registry': ['hub = fannode.discovery.hub:HubRegistry',
                             'local = fannode.discovery.local:LocalRegistry',
                             'zookeeper = fannode.discovery.zookeeper:ZookeeperRegistry'],
        'pytest11': ['fannode = fannode.testing.plugin'],
        'fannode.events': ['amqp = fannode.events.amqp:AmqpEvents', 'hub = fannode.events.hub:HubEvents',
                           'local = fannode.events.local:LocalEvents'],
        'fannode.transports': ['http = fannode.web.transport:HttpTransport',
                               'rpc = fannode.calls.transport:RpcTransport'],
        'fannode.config': ['hub = fannode.sharedconfig.hub:HubSharedConfig',
                           'local = fannode.sharedconfig.local:LocalSharedConfig',
                           'zookeeper = fannode.sharedconfig.zookeeper:ZookeeperSharedConfig'],
    },
    classifiers=[
        'Programming Language :: Python :: 3.11',
        'Framework :: Gevent',
    ],
)
