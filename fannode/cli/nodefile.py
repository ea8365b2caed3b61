"""What the commands that talk to a running node share: `--file` names the node."""
from __future__ import annotations

import argparse
from typing import Any

from fannode.cli.base import Command


class NodeCommand(Command):
    uses_cluster = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--file', '-f', default='node.yml', metavar='FILE',
                            help='the node.yml the node runs (default: ./node.yml)')

    def node(self, args: argparse.Namespace) -> Any:
        from fannode.node.client import NodeClient
        return NodeClient(args.file)
