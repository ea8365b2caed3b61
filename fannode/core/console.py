"""The line console of `fannode shell` and of the instance backdoor (standard library
only: command modules import it at load time)."""
from __future__ import annotations

import code
from typing import Any


class Console(code.InteractiveConsole):
    """Reads lines from `reader`, writes to `out`. Quiet (input piped in): no prompts, and
    no blank line at the end; the caller leaves out the banner."""

    def __init__(self, names: dict[str, Any], reader: Any, out: Any, quiet: bool, first: str = '',
                 filename: str = '<console>'):
        super().__init__(names, filename)
        self.reader, self.out, self.quiet, self.first = reader, out, quiet, first
        self.ended = False

    def raw_input(self, prompt: str = '') -> str:
        if self.first:  # a line read before the console started: the user's first input
            line, self.first = self.first, ''
        else:
            if not self.quiet:
                self.write(prompt)
            line = self.reader.readline()
            if not line:
                self.ended = True
                raise EOFError
        return line.rstrip('\r\n')

    def write(self, data: str) -> None:
        if not (self.quiet and self.ended and data == '\n'):  # interact()'s newline at EOF
            self.out.write(data)
