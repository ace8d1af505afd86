"""The migration engine: versioned ``V<NNNN>__<description>.sql`` files applied in order.

Safety properties, each one a trap another tool fell into:

* every run holds a PostgreSQL advisory lock, so concurrent ``db migrate`` processes apply
  each file exactly once (the others wait, then find nothing to do);
* each file runs in its own transaction together with its history row, so a failure rolls
  the whole file back and no "dirty" state is left: the next run simply continues;
* an applied file whose bytes changed (``changed``), or that disappeared (``missing``), is
  drift: nothing runs until it is resolved;
* a pending file older than the newest applied one is refused, never silently skipped;
* ``lock_timeout`` is set for every file, so a migration never queues behind a long-running
  lock while holding up the traffic that queues behind it.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg import sql

from migrationpilot_cli.db import locks
from migrationpilot_cli.db.sqlscript import Statement, mentions_word, split_statements
from migrationpilot_cli.errors import BadInput, OperationFailed, connection_lost

if TYPE_CHECKING:
    import psycopg

HISTORY_TABLE = "migrationpilot_schema_history"
# pg_advisory_lock key: the bytes of "mpilot-m" read as a bigint, unlikely to collide.
LOCK_KEY = int.from_bytes(b"mpilot-m", "big")
_HISTORY = sql.Identifier(HISTORY_TABLE)
FILE_NAME = re.compile(r"^V(?P<version>[0-9]+)__(?P<slug>[A-Za-z0-9_]+)\.sql$")
NO_TRANSACTION = re.compile(r"^--\s*migrationpilot:\s*no-transaction\s*$", re.IGNORECASE)

_CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS {history} (
    version       integer     PRIMARY KEY,
    description   text        NOT NULL,
    script        text        NOT NULL,
    checksum      text        NOT NULL CHECK (checksum ~ '^[0-9a-f]{{64}}$'),
    transactional boolean     NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    applied_by    text        NOT NULL DEFAULT current_user,
    execution_ms  integer     NOT NULL CHECK (execution_ms >= 0)
)"""


@dataclass(frozen=True)
class MigrationFile:
    version: int
    description: str
    path: Path
    checksum: str
    sql: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def transactional(self) -> bool:
        first_line = self.sql.split("\n", 1)[0].strip()
        return NO_TRANSACTION.match(first_line) is None

    @cached_property
    def statements(self) -> list[Statement]:
        return split_statements(self.sql)


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    description: str
    script: str
    checksum: str
    transactional: bool
    applied_at: datetime
    applied_by: str
    execution_ms: int


_PACKAGE = Path(__file__).resolve().parent.parent
_INSTALLED_COPY = _PACKAGE / "sql" / "migrations"  # where the wheel puts sql/migrations


def packaged_directory() -> Path:
    """The migrations shipped with this package: inside an installed wheel, or the
    repository's ``sql/migrations`` when running from a checkout."""
    return _INSTALLED_COPY if _INSTALLED_COPY.is_dir() else _PACKAGE.parent / "sql" / "migrations"


def is_installed_copy(directory: Path) -> bool:
    """True for the migrations inside an installed package, which must not be edited."""
    return directory.resolve() == _INSTALLED_COPY


def resolve_directory(option: Path | None) -> Path:
    """``--migrations-dir`` > ``MIGRATIONPILOT_MIGRATIONS_DIR`` > the packaged migrations."""
    if option is not None:
        return option
    configured = os.environ.get("MIGRATIONPILOT_MIGRATIONS_DIR")
    return Path(configured) if configured else packaged_directory()


def discover(directory: Path) -> list[MigrationFile]:
    """Every migration file in ``directory``, in version order; bad names are refused."""
    if not directory.is_dir():
        raise BadInput(f"migrations directory {directory} does not exist or is not a directory")
    files: dict[int, MigrationFile] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() != ".sql":
            continue
        match = FILE_NAME.match(path.name)
        if match is None:
            raise BadInput(
                f"{path}: not a migration file name; expected V<NNNN>__<description>.sql"
            )
        migration = _read(path, int(match["version"]), match["slug"].replace("_", " "))
        if migration.version in files:
            raise BadInput(
                f"{path.name} and {files[migration.version].name} share version "
                f"{migration.version}; renumber one of them"
            )
        files[migration.version] = migration
    return [files[version] for version in sorted(files)]


def _read(path: Path, version: int, description: str) -> MigrationFile:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise BadInput(f"{path}: cannot read: {error.strerror}") from error
    try:
        text = raw.decode("utf-8-sig")  # a BOM is tolerated; the checksum covers it anyway
    except UnicodeDecodeError as error:
        raise BadInput(
            f"{path.name}: not valid UTF-8 (byte {error.start}); save the file as UTF-8"
        ) from error
    return MigrationFile(version, description, path, hashlib.sha256(raw).hexdigest(), text)


def read_history(conn: psycopg.Connection[Any]) -> dict[int, AppliedMigration]:
    """The applied migrations; empty when the history table does not exist yet."""
    from psycopg.rows import class_row, tuple_row

    with conn.cursor(row_factory=tuple_row) as cursor:
        found = cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (HISTORY_TABLE,)).fetchone()
    if not found or not found[0]:
        return {}
    query = sql.SQL(
        "SELECT version, description, script, checksum, transactional, applied_at,"
        " applied_by, execution_ms FROM {history} ORDER BY version"
    ).format(history=_HISTORY)
    with conn.cursor(row_factory=class_row(AppliedMigration)) as cursor:
        rows = cursor.execute(query).fetchall()
    return {row.version: row for row in rows}


def status(
    files: Sequence[MigrationFile], applied: dict[int, AppliedMigration]
) -> list[dict[str, Any]]:
    """One row per version known to the files or the history, with its state:
    ``applied``, ``pending``, ``changed`` (the file's checksum differs) or ``missing``."""
    by_version = {file.version: file for file in files}
    rows = [_status_row(file, None) for file in files if file.version not in applied]
    for done in applied.values():
        rows.append(_status_row(by_version.get(done.version), done))
    return sorted(rows, key=lambda row: int(row["version"]))


def _status_row(file: MigrationFile | None, done: AppliedMigration | None) -> dict[str, Any]:
    if done is None:
        assert file is not None
        return {
            "version": file.version,
            "description": file.description,
            "script": file.name,
            "state": "pending",
            "checksum": file.checksum,
            "file_checksum": file.checksum,
            "applied_at": None,
            "applied_by": None,
            "execution_ms": None,
        }
    if file is None:
        state = "missing"
    else:
        state = "applied" if file.checksum == done.checksum else "changed"
    return {
        "version": done.version,
        "description": done.description,
        "script": done.script,
        "state": state,
        "checksum": done.checksum,
        "file_checksum": file.checksum if file else None,
        "applied_at": done.applied_at,
        "applied_by": done.applied_by,
        "execution_ms": done.execution_ms,
    }


def drift_problems(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Human descriptions of every changed or missing applied file."""
    problems = []
    for row in rows:
        if row["state"] == "changed":
            problems.append(f"{row['script']} changed since it was applied")
        elif row["state"] == "missing":
            problems.append(f"{row['script']} was applied but its file is missing")
    return problems


# The first file of the schema before the baseline of the first release (V0001-V0018, bigint
# keys), which the uuid baseline replaced: its name in the history marks such a database.
_PRE_BASELINE_SCRIPT = "V0001__extensions_and_roles.sql"


def refuse_pre_baseline(applied: dict[int, AppliedMigration]) -> None:
    """A database made by the migrations the baseline replaced cannot be migrated in place."""
    first = applied.get(1)
    if first is not None and first.script == _PRE_BASELINE_SCRIPT:
        raise OperationFailed(
            "this database predates the baseline schema (bigint ids, migrations V0001-V0018):"
            " migrate a fresh database and move the data over (`rules export` each project"
            " from this one with the previous release, then `files import` and `rules import`"
            " into the new one), or drop this database and run `db migrate` again"
        )


def refuse_drift(rows: Sequence[dict[str, Any]]) -> None:
    problems = drift_problems(rows)
    if problems:
        raise OperationFailed(
            "drift: " + "; ".join(problems) + ". Restore the applied files as they were"
            " (`migrationpilot db status` shows checksums) and put changes in a new migration"
        )


def pending(
    files: Sequence[MigrationFile], applied: dict[int, AppliedMigration], target: int | None
) -> list[MigrationFile]:
    """Files still to apply (up to ``target``), refusing any that would apply out of order."""
    newest = max(applied, default=0)
    todo = [
        f for f in files if f.version not in applied and (target is None or f.version <= target)
    ]
    for file in todo:
        if file.version < newest:
            raise OperationFailed(
                f"{file.name} is older than the newest applied migration "
                f"{applied[newest].script}; renumber it after {newest}"
            )
        if file.transactional and mentions_word(file.sql, "concurrently"):
            raise BadInput(
                f"{file.name} uses CONCURRENTLY, which cannot run inside a transaction; make"
                " its first line `-- migrationpilot: no-transaction`"
            )
    return todo


@contextmanager
def migration_lock(conn: psycopg.Connection[Any], lock_timeout: str) -> Iterator[None]:
    """Hold the advisory lock for the whole run; concurrent runs queue here, at most
    ``lock_timeout``, then exit 1 naming the run that holds it."""

    def refusal(holder: str) -> str:
        return (
            f"waited {lock_timeout} for the migration lock (--lock-timeout); another migration"
            f" holds it: {holder}; wait for it, or raise --lock-timeout"
        )

    locks.acquire(conn, LOCK_KEY, lock_timeout=lock_timeout, scope="session", refusal=refusal)
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def migrate(
    conn: psycopg.Connection[Any],
    files: Sequence[MigrationFile],
    *,
    target: int | None,
    lock_timeout: str,
    on_applied: Callable[[MigrationFile, int], None],
) -> list[MigrationFile]:
    """Apply every pending file in order on an autocommit connection; return what ran."""
    with migration_lock(conn, lock_timeout):
        conn.execute(sql.SQL(_CREATE_HISTORY).format(history=_HISTORY))
        applied = read_history(conn)
        refuse_pre_baseline(applied)
        refuse_drift(status(files, applied))
        todo = pending(files, applied, target)
        for file in todo:
            on_applied(file, apply_file(conn, file, lock_timeout))
    return todo


# The names PostgreSQL knows for UTC itself (not zones that merely sit at +00:00 in winter).
_UTC_NAMES = frozenset(
    ("utc", "etc/utc", "uct", "etc/uct", "universal", "etc/universal", "zulu", "etc/zulu")
)


def ensure_utc(conn: psycopg.Connection[Any]) -> str | None:
    """Make UTC the TimeZone of the database's new sessions, and say what the user should hear
    of it: the zone they had before when it was not UTC, or that only the database's owner may
    set it (None: nothing worth a word).

    The design's ``timestamp()`` columns are read by Drizzle as UTC (it appends +0000 to what
    it reads), so a server whose default zone is not UTC would hand such applications times
    off by its offset. Our columns are timestamptz; the CLI shows them in the user's own zone
    itself. The database's own setting is what counts: the server's default is the fallback,
    and the zone this session reports may be the client's (PGTZ)."""
    import psycopg
    from psycopg.rows import tuple_row

    with conn.cursor(row_factory=tuple_row) as cursor:
        row = cursor.execute(
            """
            SELECT (SELECT substr(setting, length('TimeZone=') + 1)
                      FROM pg_db_role_setting AS d, unnest(d.setconfig) AS setting
                     WHERE d.setdatabase = (SELECT oid FROM pg_database
                                             WHERE datname = current_database())
                       AND d.setrole = 0 AND setting LIKE 'TimeZone=%%'),
                   (SELECT reset_val FROM pg_settings WHERE name = 'TimeZone'),
                   current_database()
            """
        ).fetchone()
    assert row is not None
    database_zone, default_zone, database = row
    if database_zone is not None and database_zone.lower() in _UTC_NAMES:
        return None
    name = sql.Identifier(database)
    try:
        conn.execute(sql.SQL("ALTER DATABASE {} SET TimeZone = 'UTC'").format(name))
    except psycopg.errors.InsufficientPrivilege:
        return (
            f"the TimeZone of database {database} is not set to UTC, and only its owner may set"
            f" it: ask them to run ALTER DATABASE {name.as_string(conn)} SET TimeZone = 'UTC'"
        )
    previous = database_zone or default_zone
    if previous.lower() in _UTC_NAMES:
        return None
    return (
        f"set the database's TimeZone to UTC (it was {previous}): the design's applications"
        " read its times as UTC"
    )


def apply_file(conn: psycopg.Connection[Any], file: MigrationFile, lock_timeout: str) -> int:
    """Run one file and record it; returns its execution time in milliseconds."""
    started = time.monotonic()
    if file.transactional:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
            _run_statements(conn, file)
            return _record(conn, file, started)
    # Outside a transaction each statement commits on its own; the history row is written
    # last, so an interrupted file is simply run again (keep such files idempotent). A
    # CREATE INDEX CONCURRENTLY that failed leaves its index behind, INVALID: an idempotent
    # file (IF NOT EXISTS) would then skip it and be recorded as applied. So such indexes are
    # dropped before the file runs again, and none may be left when it is recorded.
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
    try:
        for name in invalid_indexes(conn):
            conn.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name))
            )
        _run_statements(conn, file)
        left = invalid_indexes(conn)
        if left:
            raise OperationFailed(
                f"{file.name}: index {', '.join(left)} is INVALID after the run (a CONCURRENTLY"
                " build did not finish); it was not recorded: rerun db migrate to rebuild it"
            )
        return _record(conn, file, started)
    finally:
        conn.execute("RESET lock_timeout")


# The schema's INVALID indexes, but those a CREATE INDEX CONCURRENTLY is building right now
# (an index is INVALID until its build ends).
_INVALID_INDEXES = """
SELECT c.relname::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND NOT i.indisvalid
  AND i.indexrelid NOT IN (SELECT p.index_relid FROM pg_stat_progress_create_index p)
ORDER BY 1
"""


def invalid_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    from psycopg.rows import tuple_row

    with conn.cursor(row_factory=tuple_row) as cursor:
        return [name for (name,) in cursor.execute(_INVALID_INDEXES).fetchall()]


def _run_statements(conn: psycopg.Connection[Any], file: MigrationFile) -> None:
    import psycopg

    for statement in file.statements:
        try:
            # Sent as bytes with no parameters: the text is the DBA's SQL, verbatim.
            conn.execute(statement.text.encode(), prepare=False)
        except psycopg.Error as error:
            if connection_lost(error):
                raise  # exit 3 from the boundary, not a failed statement
            raise _statement_failed(file, statement, error) from error


def _statement_failed(
    file: MigrationFile, statement: Statement, error: Exception
) -> OperationFailed:
    import psycopg

    diag = error.diag if isinstance(error, psycopg.Error) else None
    line = statement.line
    position = diag.statement_position if diag else None
    if position and position.isdigit():
        line += statement.text[: int(position) - 1].count("\n")
    message = (diag.message_primary if diag else None) or str(error).strip()
    outcome = "nothing from it was applied" if file.transactional else "rerun to continue"
    hint = ""
    if isinstance(error, psycopg.errors.LockNotAvailable):
        hint = "; another session holds a conflicting lock: retry, or raise --lock-timeout"
    return OperationFailed(
        f"{file.name}:{line}: {message} (statement: {statement.summary}); {outcome}{hint}"
    )


def _record(conn: psycopg.Connection[Any], file: MigrationFile, started: float) -> int:
    elapsed_ms = round((time.monotonic() - started) * 1000)
    conn.execute(
        sql.SQL(
            "INSERT INTO {history}"
            " (version, description, script, checksum, transactional, execution_ms)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(history=_HISTORY),
        (file.version, file.description, file.name, file.checksum, file.transactional, elapsed_ms),
    )
    return elapsed_ms
