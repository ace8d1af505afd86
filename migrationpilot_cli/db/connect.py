"""Connections: resolve where the database is, connect, and open the one transaction a
command runs in (as the acting user when there is one)."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.errors import BadInput, DatabaseUnreachable, NotFound, OperationFailed

if TYPE_CHECKING:
    import psycopg

    from migrationpilot_cli.settings import Settings

    # Every connection hands rows back as dicts keyed by column name.
    Connection = psycopg.Connection[dict[str, Any]]

APP_ROLE = "migrationpilot_app"

# Every form libpq takes a secret in, in any case (libpq itself wants lower case, but a
# message may quote what the user typed): the password of a URL (postgresql://u:pw@h, also
# POSTGRES://), a query parameter (?password=pw, &PASSWORD=pw, sslpassword=), and a keyword
# of a key=value string or a service file's line (password=pw, password = pw, password='p w',
# password=p\ w). passfile= and service= name files, not secrets: their contents are never
# printed. Strings, which the re module compiles on first use: every command that connects
# imports this module, and only an error or a listing of settings prints a connection string.
_SECRET_KEY = r"(?:ssl)?password"
_URL_PASSWORD = r"(?i)(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@?#\s]*:)(?P<secret>[^@/?#\s]*)(?=@)"
_QUERY_PASSWORD = rf"(?i)(?P<head>[?&]{_SECRET_KEY}=)(?P<secret>[^&#\s]*)"
_KEYWORD_PASSWORD = (
    rf"(?i)(?P<head>(?<![\w?&]){_SECRET_KEY}\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'?|(?:\\.|[^\s\\])+)"
)
_PASSWORDS = (_URL_PASSWORD, _QUERY_PASSWORD, _KEYWORD_PASSWORD)


def mask_password(conninfo: str) -> str:
    """The connection string (or any message quoting one) with every password replaced by
    ``***``: the one masking function, used wherever a connection is printed (errors, `db
    info`, `config show`, `--debug`)."""
    for pattern in _PASSWORDS:
        conninfo = re.sub(
            pattern,
            lambda m: m.group("head") + ("***" if m.group("secret") else ""),
            conninfo,
        )
    return conninfo


def mask_secrets(message: str, conninfo: str) -> str:
    """``message`` with any password of ``conninfo`` masked, wherever it appears: libpq
    quotes a token it cannot parse (``invalid percent-encoded token: "p%ZZw"``), and that
    token may be the password itself, as typed or percent-decoded."""
    from urllib.parse import unquote

    typed = [m.group("secret") for p in _PASSWORDS for m in re.finditer(p, conninfo)]
    secrets = {form for secret in typed for form in (secret, secret.strip("'"), unquote(secret))}
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        message = message.replace(secret, "***")
    return mask_password(message)


def resolve_conninfo(settings: Settings) -> str:
    """The connection string to use; starts the embedded server when that is the choice."""
    if settings.database_url is not None:
        return settings.database_url
    if settings.uses_embedded_server:
        from migrationpilot_cli.db import embedded

        return embedded.ensure_running(settings.home)
    return ""  # libpq reads PGHOST, PGSERVICE, ... itself


def describe_target(settings: Settings, conninfo: str) -> str:
    """How to name the database in a message: the masked URL, or where it came from."""
    return mask_password(conninfo) if conninfo else settings.database_url_source


def connect(
    settings: Settings, *, autocommit: bool = False, wait_seconds: float | None = None
) -> Connection:
    """Connect, retrying for up to ``wait_seconds`` (default: the ``--wait`` setting) while
    nothing answers, as a container starts; then exit 3 with a hint."""
    import psycopg
    from psycopg.rows import dict_row

    conninfo = resolve_conninfo(settings)
    waiting = settings.wait_seconds if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + waiting
    while True:
        try:
            return psycopg.connect(
                conninfo,
                autocommit=autocommit,
                row_factory=dict_row,
                # The command ('migrationpilot files import'): who holds a lock, in
                # pg_stat_activity and in our own messages.
                application_name=CLIENT.get(),
                # An attempt never outlasts the wait by much (libpq's minimum is 2 s).
                connect_timeout=int(min(10, max(2, deadline - time.monotonic()))),
            )
        except psycopg.ProgrammingError as error:
            # libpq could not parse it. `from None`: the original message may quote the
            # password, and --debug would print it in the chained traceback.
            reason = mask_secrets(str(error).strip(), conninfo)
            source = settings.database_url_source
            raise BadInput(f"{source}: not a valid connection string: {reason}") from None
        except psycopg.OperationalError as error:
            if time.monotonic() >= deadline:
                raise unreachable(settings, conninfo, error, waiting) from error
            time.sleep(0.25)


def unreachable(
    settings: Settings, conninfo: str, error: Exception, waited: float = 0
) -> DatabaseUnreachable:
    reason = mask_secrets(
        str(error).strip().splitlines()[0] if str(error).strip() else "", conninfo
    )
    hint = (
        "start the embedded server with `migrationpilot db start`"
        if settings.uses_embedded_server
        else "check the URL, or set --database-url / MIGRATIONPILOT_DATABASE_URL"
    )
    after = f" after trying for {waited:g}s" if waited else ""
    return DatabaseUnreachable(
        f"cannot connect to {describe_target(settings, conninfo)}{after}: {reason}; {hint}"
    )


# What the database's audit rows name as the client of a change (V0012): the command that
# runs, set by the app as it resolves the command line ('migrationpilot rules edit').
CLIENT: ContextVar[str] = ContextVar("client", default="migrationpilot")


@contextmanager
def transaction(
    settings: Settings, *, requires: tuple[str, str] | None = None
) -> Iterator[Connection]:
    """One command, one transaction: commit when the block ends, roll back on any error.

    With an acting user the transaction runs as the app role (no BYPASSRLS, owns nothing), so
    every row-level-security policy applies to everything the command does. ``requires``,
    a user role and what it allows ("developer", "edit rules"), is checked before any
    work: a command that would change nothing is refused as one that would."""
    with connect(settings) as conn, within(conn, settings, requires=requires):
        yield conn


@contextmanager
def within(
    conn: Connection, settings: Settings, *, requires: tuple[str, str] | None = None
) -> Iterator[Connection]:
    """One transaction on an open connection, set up as :func:`transaction` sets up its own:
    for a session that makes many (the review queue: each decision its own transaction)."""
    with conn.transaction():
        conn.execute("SELECT set_config('app.client', %s, true)", (CLIENT.get(),))
        if settings.acting_user:
            act_as(conn, settings.acting_user)
            if requires:
                conn.execute("SELECT require_user_role(%s, %s)", requires)
        yield conn


def act_as(conn: psycopg.Connection[Any], email: str) -> UUID:
    """Become ``email`` for the rest of the current transaction; returns the user's id."""
    from psycopg import sql
    from psycopg.rows import tuple_row

    with conn.cursor(row_factory=tuple_row) as cursor:  # whatever the connection's rows are
        row = cursor.execute(
            "SELECT id, email, disabled_at, disabled_reason FROM users"
            " WHERE lower(email) = lower(%s)",
            (email,),
        ).fetchone()
    if row is None:
        raise NotFound(f"no user with email {email}; check --as / MIGRATIONPILOT_USER")
    user_id: UUID = row[0]
    if row[2] is not None:
        # The database would treat them as nobody (V0016); say so before anything runs.
        since = row[2].astimezone(dt.UTC).strftime("%Y-%m-%d")
        why = f" ({row[3]})" if row[3] else ""
        raise OperationFailed(
            f"user {row[1]} is disabled since {since}{why} and can no longer act;"
            f" an admin can enable the account: `migrationpilot users enable {row[1]}`"
        )
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(APP_ROLE)))
    conn.execute("SELECT set_config('app.current_user_id', %s, true)", (str(user_id),))
    return user_id
