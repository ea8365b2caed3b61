"""What the commands that talk to a running node share: `--file` names the node."""
from __future__ import annotations

import argparse
import os
from typing import Any

from fannode.cli.base import Command


class NodeCommand(Command):
    uses_cluster = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--file', '-f', metavar='FILE',
                            help='the node.yml (or Procfile) the node runs (default: ./node.yml, else ./Procfile)')

    def node(self, args: argparse.Namespace) -> Any:
        from fannode.node.client import NodeClient
        return NodeClient(args.file or default_file())


def default_file() -> str:
    """./node.yml, else ./Procfile when only that is there (foreman's habit), as `fannode up` picks."""
    return 'Procfile' if not os.path.exists('node.yml') and os.path.exists('Procfile') else 'node.yml'

