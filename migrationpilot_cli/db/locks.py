"""Advisory locks that make a second writer wait its turn, for a bounded time, and name who it
waited for: the migration lock of `db migrate`, and the writer lock of a project that every
bulk import takes.

A waiting command polls ``pg_try_advisory_*lock`` rather than blocking in
``pg_advisory_*lock``: a statement blocked there holds a snapshot, and a ``CREATE INDEX
CONCURRENTLY`` of the running migration waits for every older snapshot to go, so the two would
wait for each other (a deadlock). Polling also keeps the transaction usable when the wait
ends in a refusal: the holder is looked up on the same connection.
"""

from __future__ import annotations

import re
import time
from datetime import UTC
from typing import TYPE_CHECKING, Any, Literal

from migrationpilot_cli.errors import BadInput, OperationFailed

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    import psycopg

# --lock-timeout: a whole number and PostgreSQL's unit (none: milliseconds, as lock_timeout).
# A string the re module compiles on first use: every command with the option imports this
# module, its `--help` too.
LOCK_TIMEOUT = r"^(?P<amount>[0-9]+)(?P<unit>ms|s|min|h)?$"
_SECONDS_PER = {None: 0.001, "ms": 0.001, "s": 1, "min": 60, "h": 3600}
_POLL_SECONDS = 0.05
_ACQUIRE = {
    "session": "SELECT pg_try_advisory_lock(%s)",
    "transaction": "SELECT pg_try_advisory_xact_lock(%s)",
}


def timeout_seconds(lock_timeout: str) -> float:
    """``--lock-timeout`` in seconds; bad input (exit 2) when it is not a duration."""
    found = re.match(LOCK_TIMEOUT, lock_timeout)
    if found is None:
        raise BadInput(f"--lock-timeout {lock_timeout!r}: expected a duration like 500ms, 5s, 1min")
    return int(found["amount"]) * _SECONDS_PER[found["unit"]]


def project_key(project_id: UUID) -> int:
    """The advisory lock key of a project's writers: 64 bits of a hash of its id, signed as
    PostgreSQL's bigint is."""
    import hashlib  # here: only a project's writers need it, not every importer of the module

    digest = hashlib.blake2b(b"migrationpilot project writer:" + project_id.bytes, digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def acquire(
    conn: psycopg.Connection[Any],
    key: int,
    *,
    lock_timeout: str,
    scope: Literal["session", "transaction"],
    refusal: Callable[[str], str],
    on_wait: Callable[[str], None] = lambda holder: None,
) -> float:
    """Take the advisory lock ``key``, waiting at most ``lock_timeout`` (0: as long as it
    takes, as PostgreSQL's lock_timeout 0 means) for whoever holds it; returns the seconds
    waited (0.0: it was free). ``on_wait(holder)`` is told once when the wait begins, where
    ``holder`` names the session that holds the lock; when the time is up: exit 1 with
    ``refusal(holder)``."""
    from psycopg.rows import tuple_row

    patience = timeout_seconds(lock_timeout)
    started = time.monotonic()
    with conn.cursor(row_factory=tuple_row) as cursor:  # whatever the connection's rows are
        if cursor.execute(_ACQUIRE[scope], (key,)).fetchone() == (True,):
            return 0.0
        on_wait(holder(cursor, key))
        while cursor.execute(_ACQUIRE[scope], (key,)).fetchone() != (True,):
            if patience and time.monotonic() - started >= patience:
                raise OperationFailed(refusal(holder(cursor, key)))
            time.sleep(_POLL_SECONDS)
    return time.monotonic() - started


def lock_project(
    conn: psycopg.Connection[Any], project: dict[str, Any], lock_timeout: str
) -> float:
    """Take the writer lock of ``project`` for the rest of the transaction, so that two
    imports into one project run one after the other instead of failing on each other's rows;
    returns the seconds waited for it."""
    from migrationpilot_cli.output import notice

    name = project["name"]

    def waiting(holder: str) -> None:
        notice(f"project {name!r} is being written by {holder}; waiting up to {lock_timeout}")

    def refusal(holder: str) -> str:
        return (
            f"waited {lock_timeout} for another writer of project {name!r} (--lock-timeout):"
            f" {holder} holds it; nothing was written: retry, or raise --lock-timeout"
        )

    key = project_key(project["id"])
    return acquire(
        conn, key, lock_timeout=lock_timeout, scope="transaction", refusal=refusal, on_wait=waiting
    )


# An advisory lock on a bigint key shows in pg_locks as its high and low 32 bits (classid,
# objid), with objsubid 1.
_HOLDER = """
SELECT a.pid, coalesce(NULLIF(a.application_name, ''), 'no application name'),
       a.backend_start, a.usename
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid::bigint = %s AND l.objid::bigint = %s
"""


def holder(cursor: Any, key: int) -> str:
    """Who holds the advisory lock ``key``: pid, application, user and since when."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = cursor.execute(_HOLDER, (unsigned >> 32, unsigned & 0xFFFFFFFF)).fetchone()
    if row is None:  # let go just now, or not visible to this role
        return "another session"
    pid, application, since, user = row
    if since is None:  # hidden from a role that may not read other sessions' statistics
        return f"pid {pid} ({application}, user {user})"
    started = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"pid {pid} ({application}, user {user}, connected since {started})"
