"""The bag tools' errors. Each is a user mistake or a damaged input the user must fix, so each
derives from `pixood_ros.cli.UserError`: one line on stderr, exit code 2."""

from __future__ import annotations

from pixood_ros.cli import UserError


class BagError(UserError):
    """A problem with a bag: missing, corrupt, foreign, or the wrong topic."""


class BagDamaged(BagError):
    """The bag stopped being readable part-way; messages before the damage were delivered, so
    the tools keep what they computed and write a partial report."""
