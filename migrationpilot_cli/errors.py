"""The errors a command raises on purpose, each carrying its documented exit code.

The one error boundary (app.py) prints ``message`` as a single line on stderr and exits
with ``exit_code``. Anything else that escapes a command is mapped there too.
"""

from __future__ import annotations

import re


class MigrationPilotError(Exception):
    """Base class: a message meant for the user and the exit code that goes with it."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OperationFailed(MigrationPilotError):
    """The operation was refused or failed: constraint, drift, verification (exit 1)."""

    exit_code = 1


class ChangedMeanwhile(OperationFailed):
    """A decision about a rule that is no longer at the version it was made on (exit 1)."""


class BadInput(MigrationPilotError):
    """Bad usage or bad input: a malformed file, a value out of range (exit 2)."""

    exit_code = 2


class DatabaseUnreachable(MigrationPilotError):
    """No database answered (exit 3)."""

    exit_code = 3


class NotFound(MigrationPilotError):
    """Unknown id, or not visible to the acting user (exit 4)."""

    exit_code = 4


# The one line and exit code of any failure: the error boundary (app.py) prints it, and the
# full-screen review queue shows it in the app.
def describe(error: BaseException) -> tuple[str, int]:
    """The one line and the exit code for anything that escaped a command."""
    if isinstance(error, MigrationPilotError):
        return error.message, error.exit_code
    import typer

    if isinstance(error, typer.Abort | KeyboardInterrupt):
        return "interrupted", 130
    if hasattr(error, "format_message") and hasattr(error, "exit_code"):
        # A usage error from (Typer's vendored) Click: it knows its message and exit code.
        context = getattr(error, "ctx", None)
        command = context.command_path if context is not None else "migrationpilot"
        # One line: Click lists an enum's choices one per line.
        message = re.sub(r"\s*\n\s*", " ", error.format_message().strip())
        return f"{message} (see `{command} --help`)", int(error.exit_code)
    if type(error).__module__.startswith("psycopg"):
        return _describe_database_error(error)
    return f"internal error: {type(error).__name__}: {error} (rerun with --debug)", 1


# The server ended the session: terminated by an administrator (57P01), crashed or shutting
# down (57P02, 57P03), idle too long (25P03, 57P05), or a connection exception (class 08).
_SESSION_ENDED = frozenset({"57P01", "57P02", "57P03", "57P05", "25P03"})


def connection_lost(error: BaseException) -> bool:
    """Whether ``error`` means the connection is gone (exit 3), whatever the command was doing:
    an error with no SQLSTATE (nothing answered), or one the server sends as it ends the
    session."""
    import psycopg

    if not isinstance(error, psycopg.OperationalError):
        return False
    sqlstate = error.diag.sqlstate if error.diag else None
    return not sqlstate or sqlstate in _SESSION_ENDED or sqlstate.startswith("08")


def _describe_database_error(error: BaseException) -> tuple[str, int]:
    import psycopg

    from migrationpilot_cli.db.connect import mask_password

    diag = getattr(error, "diag", None)
    message = (diag.message_primary if diag else None) or str(error).strip().splitlines()[0]
    detail = diag.message_detail if diag else None
    text = mask_password(f"{message} ({detail})" if detail else message)
    if connection_lost(error):
        return f"lost the database connection: {text}", 3
    if isinstance(error, psycopg.errors.UniqueViolation) and diag:
        # Under row-level security PostgreSQL withholds the key values (no DETAIL).
        key = re.match(r"Key \((.+)\)=\((.*)\) already exists", detail or "")
        what = f"({key[1]}) = ({key[2]})" if key else f"unique constraint {diag.constraint_name}"
        return f"already exists in {diag.table_name}: {what}", 1
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return f"permission denied: {text}", 1
    if isinstance(error, psycopg.DataError):
        return text, 2
    return text, 1
