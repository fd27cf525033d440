"""argparse pieces the command-line tools share."""

from __future__ import annotations

import argparse

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """User mistakes end in one line on stderr and exit code 2, not a usage dump.

    The line names the command (`pixood-bravo`, also for its sub-commands' mistakes)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog.split()[0]}: error: {message}\n")
