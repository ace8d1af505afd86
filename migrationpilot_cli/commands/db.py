"""`migrationpilot db ...`: migrations, verification, and the embedded server."""

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from migrationpilot_cli.errors import BadInput, OperationFailed
from migrationpilot_cli.options import examples
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    QuietOption,
    listing,
    notice,
    render,
    render_record,
    warning,
)
from migrationpilot_cli.settings import Settings

app = typer.Typer(
    help="Set up the database: migrations, verification and the embedded server.",
    no_args_is_help=True,
)

MigrationsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--migrations-dir",
        envvar="MIGRATIONPILOT_MIGRATIONS_DIR",
        help="Directory of V<NNNN>__<description>.sql files. Default: the packaged migrations.",
        show_default=False,
        file_okay=False,
    ),
]
_STATUS_COLUMNS = (
    "version",
    "description",
    "script",
    "state",
    "checksum",
    "file_checksum",
    "applied_at",
    "applied_by",
    "execution_ms",
)
_MIGRATE_COLUMNS = ("version", "description", "script", "execution_ms")
_STATUS_TABLE_COLUMNS = ("version", "description", "state", "applied_at", "execution_ms")


def _files(migrations_dir: Path | None) -> list[Any]:
    from migrationpilot_cli.db import migrations

    return migrations.discover(migrations.resolve_directory(migrations_dir))


@app.command(
    epilog=examples(
        "migrationpilot db migrate",
        "migrationpilot db migrate --dry-run | less",
        "migrationpilot --database-url postgresql://app@db.internal/mp db migrate --target 5",
    )
)
@listing(_MIGRATE_COLUMNS)
def migrate(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the pending files and their SQL; change nothing."),
    ] = False,
    target: Annotated[
        int | None,
        typer.Option("--target", metavar="VERSION", help="Apply up to this version only."),
    ] = None,
    migrations_dir: MigrationsDirOption = None,
    lock_timeout: Annotated[
        str,
        typer.Option(
            "--lock-timeout",
            help="Give up a statement that waits longer than this for a lock (ms, s, min, h),"
            " so a migration never stalls live traffic queued behind it; and give up waiting"
            " this long for another migration to finish (0: wait for it).",
        ),
    ] = "5s",
    fmt: FormatOption = None,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Apply pending migrations in order, each in its own transaction, under a lock."""
    from migrationpilot_cli.db import connect, locks, migrations

    locks.timeout_seconds(lock_timeout)  # bad input before any connection
    files = _files(migrations_dir)
    if target is not None and target not in {file.version for file in files}:
        raise BadInput(f"--target {target}: no migration file has that version")
    settings: Settings = ctx.obj
    with connect.connect(settings, autocommit=True) as conn:
        if dry_run:
            applied = migrations.read_history(conn)
            migrations.refuse_pre_baseline(applied)
            migrations.refuse_drift(migrations.status(files, applied))
            _print_dry_run(migrations.pending(files, applied, target))
            return
        applied_rows: list[dict[str, object]] = []

        def report(file: migrations.MigrationFile, elapsed_ms: int) -> None:
            notice(f"applied {file.name} ({elapsed_ms} ms)")
            applied_rows.append(
                {
                    "version": file.version,
                    "description": file.description,
                    "script": file.name,
                    "execution_ms": elapsed_ms,
                }
            )

        migrations.migrate(conn, files, target=target, lock_timeout=lock_timeout, on_applied=report)
        time_zone = migrations.ensure_utc(conn)
    if time_zone is not None:
        warning(time_zone)
    if applied_rows:
        render(applied_rows, _MIGRATE_COLUMNS, fmt=fmt, fields=fields, header=header)
    else:
        notice("nothing to migrate: the database is up to date")


def _print_dry_run(files: list[Any]) -> None:
    if not files:
        notice("nothing to migrate: the database is up to date")
    for file in files:
        mode = "" if file.transactional else ", no transaction"
        typer.echo(f"-- {file.name} (pending{mode})\n{file.sql.rstrip()}\n")


@app.command(
    epilog=examples(
        "migrationpilot db status",
        "migrationpilot db status --format json",
        "migrationpilot db status --fields version,state | grep -v applied",
    )
)
@listing(_STATUS_COLUMNS)
def status(
    ctx: typer.Context,
    migrations_dir: MigrationsDirOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """Every migration and its state: applied, pending, changed or missing."""
    from migrationpilot_cli.db import connect, migrations

    files = _files(migrations_dir)
    with connect.connect(ctx.obj, autocommit=True) as conn:
        rows = migrations.status(files, migrations.read_history(conn))
    render(
        rows,
        _STATUS_COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        id_column="version",
        table_columns=_STATUS_TABLE_COLUMNS,
        title="Migrations",
    )


@app.command(
    epilog=examples(
        "migrationpilot db verify && migrationpilot db migrate",
        "migrationpilot db verify --checksums-only",
    )
)
def verify(
    ctx: typer.Context,
    migrations_dir: MigrationsDirOption = None,
    checksums_only: Annotated[
        bool,
        typer.Option(
            "--checksums-only",
            help="Check the applied files against their checksums only; do not compare the"
            " live schema (for a role without CREATEDB).",
        ),
    ] = False,
) -> None:
    """Check the applied migrations against their files and the live schema against them.

    Each applied file must match its checksum; then the schema those files make is built in
    a scratch database and compared with the live one (which needs CREATEDB), and the live
    objects' owners and the application role's attributes and memberships are checked.
    Exit 1 names each difference."""
    from migrationpilot_cli.db import connect, migrations, schemadiff

    files = _files(migrations_dir)

    def leftover(name: str, reason: str) -> None:
        warning(f"could not drop the scratch database {name} ({reason}); drop it yourself")

    with connect.connect(ctx.obj, autocommit=True) as conn:
        history = migrations.read_history(conn)
        migrations.refuse_pre_baseline(history)
        rows = migrations.status(files, history)
        problems = migrations.drift_problems(rows)
        if problems:
            raise OperationFailed("verification failed: " + "; ".join(problems))
        applied = [file for file in files if file.version in history]
        if checksums_only:
            notice(
                f"ok: {len(applied)} applied migrations match their files"
                " (checksums only: the live schema was not compared)"
            )
            return
        try:
            differences = schemadiff.compare(conn, applied, leftover)
        except schemadiff.ScratchRefused as refused:
            raise OperationFailed(
                f"cannot compare the live schema: {refused.role} may not create a scratch"
                " database (CREATEDB); run db verify as a role that may, or pass"
                " --checksums-only to check the files alone"
            ) from refused
    if differences:
        raise OperationFailed(
            "verification failed: the live schema differs from what the migrations make:\n"
            + "\n".join(differences)
        )
    notice(
        f"ok: {len(applied)} applied migrations match their files, and the live schema"
        " matches what they make"
    )


# The longest name a migration's file carries (`db new`).
_LONGEST_SLUG = 100


@app.command(
    epilog=examples('migrationpilot db new "add rule hash" --migrations-dir sql/migrations')
)
def new(
    name: Annotated[str, typer.Argument(help="What the migration does, e.g. 'add rule hash'.")],
    migrations_dir: MigrationsDirOption = None,
) -> None:
    """Write the next numbered, empty migration file and print its path."""
    from migrationpilot_cli.db import migrations

    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise BadInput(f"{name!r}: a migration name needs letters or digits")
    if len(slug) > _LONGEST_SLUG:
        # A file name has at most 255 bytes; a name that long is a description, and the
        # file's first line is where a description goes.
        raise BadInput(
            f"a migration name of {len(slug)} characters is too long for its file name"
            f" (at most {_LONGEST_SLUG}); say the rest in the file"
        )
    directory = migrations.resolve_directory(migrations_dir)
    if migrations_dir is None and migrations.is_installed_copy(directory):
        raise BadInput("the packaged migrations are read-only; pass --migrations-dir DIR")
    files = migrations.discover(directory)
    path = directory / f"V{max((f.version for f in files), default=0) + 1:04d}__{slug}.sql"
    with path.open("x", encoding="utf-8") as handle:
        handle.write(
            f"-- {name}\n"
            "-- Runs in one transaction with its history row. For CREATE INDEX CONCURRENTLY,\n"
            "-- make the first line: -- migrationpilot: no-transaction\n"
        )
    typer.echo(str(path))


@app.command(epilog=examples("migrationpilot db wait --timeout 60 && migrationpilot db migrate"))
def wait(
    ctx: typer.Context,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to keep trying before exit 3.", min=0)
    ] = 30,
) -> None:
    """Wait until the database answers: for containers and CI (exit 3 on timeout)."""
    from migrationpilot_cli.db import connect

    with connect.connect(ctx.obj, autocommit=True, wait_seconds=timeout) as conn:
        conn.execute("SELECT 1")
    notice("the database is ready")


@app.command(epilog=examples("migrationpilot db start"))
def start(ctx: typer.Context) -> None:
    """Start the embedded PostgreSQL (created on first use) and print its URL."""
    from migrationpilot_cli.db import embedded

    settings: Settings = ctx.obj
    url = embedded.ensure_running(settings.home)
    notice(f"embedded PostgreSQL is running; data in {embedded.data_directory(settings.home)}")
    typer.echo(url)


@app.command(epilog=examples("migrationpilot db stop"))
def stop(ctx: typer.Context) -> None:
    """Stop the embedded PostgreSQL."""
    from migrationpilot_cli.db import embedded

    stopped = embedded.stop(ctx.obj.home)
    notice("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


@app.command(epilog=examples("migrationpilot db info", "migrationpilot db info --format json"))
def info(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """Where the data lives: the embedded server, and the connection this shell would use."""
    from migrationpilot_cli.db import connect, embedded

    settings: Settings = ctx.obj
    server = embedded.info(settings.home)
    url = settings.database_url if settings.database_url is not None else server.url
    record = {
        "connection": settings.database_url_source,
        "database_url": connect.mask_password(url) if url else None,
        "home": str(settings.home),
        "embedded_data_directory": str(server.data_directory),
        "embedded_running": server.running,
        "embedded_pid": server.pid,
        "embedded_url": server.url,
        "embedded_postgresql_version": server.version,
    }
    render_record(record, fmt=fmt)
