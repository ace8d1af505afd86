"""The errors a command raises on purpose, each carrying its documented exit code.

The one error boundary (app.py) prints ``message`` as a single line on stderr and exits
with ``exit_code``. Anything else that escapes a command is mapped there too.
"""

from __future__ import annotations


class MigrationPilotError(Exception):
    """Base class: a message meant for the user and the exit code that goes with it."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OperationFailed(MigrationPilotError):
    """The operation was refused or failed: constraint, drift, verification (exit 1)."""

    exit_code = 1


class BadInput(MigrationPilotError):
    """Bad usage or bad input: a malformed file, a value out of range (exit 2)."""

    exit_code = 2


class DatabaseUnreachable(MigrationPilotError):
    """No database answered (exit 3)."""

    exit_code = 3


class NotFound(MigrationPilotError):
    """Unknown id, or not visible to the acting user (exit 4)."""

    exit_code = 4
