"""`db migrate`, `db status`, `db verify`, `db new`: the migration engine through the CLI."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migrationpilot_cli.db import migrations
from tests.conftest import CONSOLE_SCRIPT, probe_role

PACKAGED = migrations.discover(migrations.packaged_directory())


def history(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('migrationpilot_schema_history')").fetchone()
        if exists is None or exists[0] is None:
            return []
        return conn.execute(
            "SELECT version, script, checksum FROM migrationpilot_schema_history ORDER BY 1"
        ).fetchall()


def table_exists(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
        return bool(row and row[0])


def write(directory: Path, name: str, text: str, newline: str = "\n") -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def db(cli: Any, url: str, *args: str, directory: Path | None = None) -> Any:
    """`migrationpilot --database-url URL db ARGS [--migrations-dir DIRECTORY]`."""
    extra = ("--migrations-dir", str(directory)) if directory else ()
    return cli("--database-url", url, "db", *args, *extra)


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    write(directory, "V0001__create_accounts.sql", "CREATE TABLE accounts (id bigint);\n")
    write(directory, "V0002__create_loans.sql", "CREATE TABLE loans (id bigint);\n")
    return directory


def test_migrate_from_empty_then_again_does_nothing(cli: Any, empty_database_url: str) -> None:
    first = cli("--database-url", empty_database_url, "db", "migrate")
    assert first.exit_code == 0, first.stderr
    applied_lines = first.stdout.splitlines()
    assert [line.split("\t")[2] for line in applied_lines] == [f.name for f in PACKAGED]
    assert [row[1] for row in history(empty_database_url)] == [f.name for f in PACKAGED]

    second = cli("--database-url", empty_database_url, "db", "migrate")
    assert (second.exit_code, second.stdout) == (0, "")
    assert len(history(empty_database_url)) == len(PACKAGED)


def test_status_json_reports_every_version(cli: Any, empty_database_url: str) -> None:
    pending = json.loads(
        cli("--database-url", empty_database_url, "db", "status", "--format", "json").stdout
    )
    assert {row["state"] for row in pending} == {"pending"}
    cli("--database-url", empty_database_url, "db", "migrate", "--target", "2")

    rows = json.loads(
        cli("--database-url", empty_database_url, "db", "status", "--format", "json").stdout
    )
    assert [(row["version"], row["state"]) for row in rows[:3]] == [
        (1, "applied"),
        (2, "applied"),
        (3, "pending"),
    ]
    first = rows[0]
    assert first["checksum"] == PACKAGED[0].checksum
    assert first["applied_at"].endswith("+00:00")
    assert {"version", "description", "state", "checksum", "applied_at"} <= first.keys()


def test_eight_processes_migrate_one_database_at_once(empty_database_url: str) -> None:
    command = [str(CONSOLE_SCRIPT), "--database-url", empty_database_url, "db", "migrate"]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    results = [(process.wait(timeout=120), *process.communicate()) for process in processes]
    assert [code for code, _, _ in results] == [0] * 8, [err for _, _, err in results]
    # Exactly one process applied the files; the others waited and found nothing to do.
    assert sorted(len(out.splitlines()) for _, out, _ in results) == [0] * 7 + [len(PACKAGED)]
    assert [row[0] for row in history(empty_database_url)] == [f.version for f in PACKAGED]


def test_failing_file_rolls_back_whole_and_a_fixed_file_then_applies(
    cli: Any, empty_database_url: str, migrations_dir: Path
) -> None:
    bad = write(
        migrations_dir,
        "V0003__add_rates.sql",
        "CREATE TABLE rates (id bigint);\n\n-- the typo below\nINSERT INTO ratez VALUES (1);\n",
    )
    result = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert result.exit_code == 1
    assert 'V0003__add_rates.sql:4: relation "ratez" does not exist' in result.stderr
    assert "INSERT INTO ratez" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert table_exists(empty_database_url, "loans")
    assert not table_exists(empty_database_url, "rates")
    assert [row[0] for row in history(empty_database_url)] == [1, 2]

    bad.write_text("CREATE TABLE rates (id bigint);\nINSERT INTO rates VALUES (1);\n")
    fixed = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert fixed.exit_code == 0, fixed.stderr
    assert [row[0] for row in history(empty_database_url)] == [1, 2, 3]


def test_syntax_error_names_the_line_inside_a_long_statement(
    cli: Any, empty_database_url: str, migrations_dir: Path
) -> None:
    write(
        migrations_dir,
        "V0003__broken.sql",
        "-- header\nCREATE TABLE rates (\n  id bigint,\n  rate numerc(5,2) NOT NULL\n);\n",
    )
    result = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert result.exit_code == 1
    assert "V0003__broken.sql:4:" in result.stderr
    assert "numerc" in result.stderr


def test_changed_applied_file_is_drift_for_verify_and_migrate(
    cli: Any, empty_database_url: str, migrations_dir: Path
) -> None:
    assert db(cli, empty_database_url, "migrate", directory=migrations_dir).exit_code == 0
    assert db(cli, empty_database_url, "verify", directory=migrations_dir).exit_code == 0

    write(migrations_dir, "V0001__create_accounts.sql", "CREATE TABLE accounts (id int);\n")
    write(migrations_dir, "V0003__more.sql", "CREATE TABLE more (id bigint);\n")
    verify = db(cli, empty_database_url, "verify", directory=migrations_dir)
    assert verify.exit_code == 1
    assert "V0001__create_accounts.sql changed since it was applied" in verify.stderr
    checksums = db(cli, empty_database_url, "verify", "--checksums-only", directory=migrations_dir)
    assert checksums.exit_code == 1
    assert "V0001__create_accounts.sql changed since it was applied" in checksums.stderr
    migrate = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert migrate.exit_code == 1
    assert "V0001__create_accounts.sql changed" in migrate.stderr
    assert not table_exists(empty_database_url, "more")

    status = json.loads(
        db(cli, empty_database_url, "status", "--format", "json", directory=migrations_dir).stdout
    )
    assert [row["state"] for row in status] == ["changed", "applied", "pending"]
    assert status[0]["checksum"] != status[0]["file_checksum"]


def test_missing_applied_file_is_reported(
    cli: Any, empty_database_url: str, migrations_dir: Path
) -> None:
    db(cli, empty_database_url, "migrate", directory=migrations_dir)
    (migrations_dir / "V0002__create_loans.sql").unlink()
    verify = db(cli, empty_database_url, "verify", directory=migrations_dir)
    assert verify.exit_code == 1
    assert "V0002__create_loans.sql was applied but its file is missing" in verify.stderr
    status = db(cli, empty_database_url, "status", directory=migrations_dir)
    assert [line.split("\t")[3] for line in status.stdout.splitlines()] == ["applied", "missing"]


def test_dry_run_prints_pending_sql_and_changes_nothing(
    cli: Any, empty_database_url: str, migrations_dir: Path
) -> None:
    result = db(cli, empty_database_url, "migrate", "--dry-run", directory=migrations_dir)
    assert result.exit_code == 0
    assert "-- V0001__create_accounts.sql (pending)" in result.stdout
    assert "CREATE TABLE loans (id bigint);" in result.stdout
    assert not table_exists(empty_database_url, "accounts")
    assert not table_exists(empty_database_url, "migrationpilot_schema_history")


def test_no_transaction_file_runs_create_index_concurrently(
    cli: Any, empty_database_url: str, migrations_dir: Path
) -> None:
    write(
        migrations_dir,
        "V0003__index_loans.sql",
        "-- migrationpilot: no-transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS loans_id ON loans (id);\n",
    )
    result = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert result.exit_code == 0, result.stderr
    with psycopg.connect(empty_database_url) as conn:
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'loans_id'::regclass"
        ).fetchone()
        transactional = conn.execute(
            "SELECT transactional FROM migrationpilot_schema_history WHERE version = 3"
        ).fetchone()
    assert valid == (True,)
    assert transactional == (False,)


def test_concurrently_without_the_marker_is_refused_before_anything_runs(
    cli: Any, empty_database_url: str, migrations_dir: Path
) -> None:
    write(
        migrations_dir,
        "V0003__index_loans.sql",
        "-- CONCURRENTLY in a comment is fine\nCREATE INDEX CONCURRENTLY loans_id ON loans (id);\n",
    )
    result = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert result.exit_code == 2
    assert "V0003__index_loans.sql uses CONCURRENTLY" in result.stderr
    assert "-- migrationpilot: no-transaction" in result.stderr
    assert history(empty_database_url) == []
    assert not table_exists(empty_database_url, "accounts")


def test_crlf_bom_and_utf8_files_apply_and_keep_their_text(
    cli: Any, empty_database_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    write(
        directory,
        "V0001__windows_file.sql",
        "\ufeff-- Zinsberechnung für Darlehen\nCREATE TABLE taux (id bigint);\n"
        "COMMENT ON TABLE taux IS 'interêts - 利息; with a semicolon';\n",
        newline="\r\n",
    )
    result = db(cli, empty_database_url, "migrate", directory=directory)
    assert result.exit_code == 0, result.stderr
    with psycopg.connect(empty_database_url) as conn:
        comment = conn.execute("SELECT obj_description('taux'::regclass)").fetchone()
    assert comment == ("interêts - 利息; with a semicolon",)


def test_bad_files_are_refused_with_the_name(
    cli: Any, empty_database_url: str, migrations_dir: Path
) -> None:
    (migrations_dir / "V0003__latin1.sql").write_bytes(b"-- caf\xe9\nSELECT 1;\n")
    result = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert result.exit_code == 2
    assert "V0003__latin1.sql: not valid UTF-8" in result.stderr
    (migrations_dir / "V0003__latin1.sql").unlink()

    write(migrations_dir, "V3_missing_underscore.sql", "SELECT 1;")
    result = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert result.exit_code == 2
    assert "V3_missing_underscore.sql: not a migration file name" in result.stderr
    (migrations_dir / "V3_missing_underscore.sql").unlink()

    write(migrations_dir, "V02__duplicate.sql", "SELECT 1;")
    result = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert result.exit_code == 2
    assert "share version 2" in result.stderr
    assert history(empty_database_url) == []


def test_out_of_order_file_is_refused_not_skipped(
    cli: Any, empty_database_url: str, migrations_dir: Path
) -> None:
    (migrations_dir / "V0001__create_accounts.sql").rename(migrations_dir / "later.txt")
    db(cli, empty_database_url, "migrate", directory=migrations_dir)
    (migrations_dir / "later.txt").rename(migrations_dir / "V0001__create_accounts.sql")
    result = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert result.exit_code == 1
    assert "V0001__create_accounts.sql is older than the newest applied" in result.stderr


def test_bad_options_exit_2(cli: Any, empty_database_url: str) -> None:
    common = ("--database-url", empty_database_url, "db", "migrate")
    timeout = cli(*common, "--lock-timeout", "soon")
    assert timeout.exit_code == 2
    assert "--lock-timeout 'soon'" in timeout.stderr
    target = cli(*common, "--target", "999")
    assert target.exit_code == 2
    assert "no migration file has that version" in target.stderr
    unknown = cli(*common, "--bogus")
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("error: No such option: --bogus")
    assert len(unknown.stderr.splitlines()) == 1
    missing = cli(*common, "--migrations-dir", "/nonexistent/dir")
    assert missing.exit_code == 2
    assert history(empty_database_url) == []


def test_lock_timeout_stops_a_migration_queued_behind_a_lock(
    cli: Any, empty_database_url: str, migrations_dir: Path
) -> None:
    db(cli, empty_database_url, "migrate", directory=migrations_dir)
    write(migrations_dir, "V0003__alter_loans.sql", "ALTER TABLE loans ADD COLUMN rate numeric;\n")
    with psycopg.connect(empty_database_url) as holder:
        holder.execute("LOCK TABLE loans IN ACCESS SHARE MODE")  # a long-running reader
        result = db(
            cli, empty_database_url, "migrate", "--lock-timeout", "200ms", directory=migrations_dir
        )
    assert result.exit_code == 1
    assert "V0003__alter_loans.sql:1: canceling statement due to lock timeout" in result.stderr
    assert "--lock-timeout" in result.stderr
    assert [row[0] for row in history(empty_database_url)] == [1, 2]


def test_lock_timeout_bounds_the_wait_for_another_migration_and_names_it(
    empty_database_url: str, migrations_dir: Path
) -> None:
    # Another `db migrate` (here, a session holding the same advisory lock) runs: ours waits at
    # most --lock-timeout, then says who holds the lock, and applies nothing.
    def migrate() -> subprocess.CompletedProcess[str]:
        command = [str(CONSOLE_SCRIPT), "--database-url", empty_database_url, "db", "migrate",
                   "--migrations-dir", str(migrations_dir), "--lock-timeout", "300ms"]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    with psycopg.connect(empty_database_url, autocommit=True) as holder:
        holder.execute("SET application_name = 'the other migrator'")
        holder.execute("SELECT pg_advisory_lock(%s)", (migrations.LOCK_KEY,))
        pid = holder.execute("SELECT pg_backend_pid()").fetchone()
        result = migrate()
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr.startswith(
            "error: waited 300ms for the migration lock (--lock-timeout); another migration"
            f" holds it: pid {pid[0] if pid else '?'} (the other migrator, user "
        )
        assert result.stderr.endswith("; wait for it, or raise --lock-timeout\n")
        assert len(result.stderr.splitlines()) == 1
    assert history(empty_database_url) == []
    # Once it is free, the same command runs.
    rerun = migrate()
    assert rerun.returncode == 0, rerun.stderr
    assert [row[0] for row in history(empty_database_url)] == [1, 2]


@pytest.mark.parametrize("value", ["5 s", "1d", "-1s", ""])
def test_a_bad_lock_timeout_is_refused_before_connecting(cli: Any, value: str) -> None:
    result = cli("--database-url", "postgresql://nobody@127.0.0.1:1/none", "db", "migrate",
                 "--lock-timeout", value)  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --lock-timeout {value!r}: expected a duration like 500ms, 5s, 1min\n"
    )


def test_a_failed_concurrent_index_is_named_by_verify_and_rebuilt_by_the_next_migrate(
    cli: Any, empty_database_url: str, migrations_dir: Path, scratch_prefix: str
) -> None:
    assert db(cli, empty_database_url, "migrate", directory=migrations_dir).exit_code == 0
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO loans VALUES (1), (1)")  # the unique index will fail
    write(
        migrations_dir,
        "V0003__one_loan_per_id.sql",
        "-- migrationpilot: no-transaction\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS loans_one_per_id ON loans (id);\n",
    )
    failed = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert failed.exit_code == 1
    assert "could not create unique index" in failed.stderr
    # The failed build left its index behind, INVALID: verify names it.
    verified = db(cli, empty_database_url, "verify", directory=migrations_dir)
    assert verified.exit_code == 1
    assert (
        "index loans_one_per_id: INVALID (a CONCURRENTLY build that failed);"
        " rerun db migrate to rebuild it"
    ) in verified.stderr.splitlines()
    assert scratch_databases(empty_database_url, scratch_prefix) == []
    # Fixed data, the same idempotent file: it is rebuilt, not skipped over the INVALID one.
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM loans")
    rerun = db(cli, empty_database_url, "migrate", directory=migrations_dir)
    assert rerun.exit_code == 0, rerun.stderr
    assert [row[0] for row in history(empty_database_url)] == [1, 2, 3]
    with psycopg.connect(empty_database_url) as conn:
        valid = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'loans_one_per_id'::regclass"
        ).fetchone()
    assert valid == (True,)
    assert db(cli, empty_database_url, "verify", directory=migrations_dir).exit_code == 0


def test_new_writes_the_next_numbered_file(cli: Any, migrations_dir: Path) -> None:
    result = cli("db", "new", "Add rule hash!", "--migrations-dir", str(migrations_dir))
    assert result.exit_code == 0
    created = migrations_dir / "V0003__add_rule_hash.sql"
    assert result.stdout.strip() == str(created)
    assert created.read_text().startswith("-- Add rule hash!\n")
    assert cli("db", "new", "!!!", "--migrations-dir", str(migrations_dir)).exit_code == 2


def test_new_refuses_a_name_too_long_for_a_file_name(cli: Any, migrations_dir: Path) -> None:
    before = sorted(migrations_dir.iterdir())
    result = cli("db", "new", "x" * 245, "--migrations-dir", str(migrations_dir))
    assert result.exit_code == 2
    assert result.stderr == (
        "error: a migration name of 245 characters is too long for its file name (at most 100);"
        " say the rest in the file\n"
    )
    assert sorted(migrations_dir.iterdir()) == before
    assert cli("db", "new", "y" * 100, "--migrations-dir", str(migrations_dir)).exit_code == 0


def test_migrations_dir_from_the_environment(
    cli: Any, empty_database_url: str, migrations_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATIONPILOT_MIGRATIONS_DIR", str(migrations_dir))
    monkeypatch.setenv("MIGRATIONPILOT_DATABASE_URL", empty_database_url)
    assert cli("db", "migrate").exit_code == 0
    assert [row[1] for row in history(empty_database_url)] == [
        "V0001__create_accounts.sql",
        "V0002__create_loans.sql",
    ]


def test_a_database_from_before_the_baseline_is_refused_with_the_way_out(
    cli: Any, empty_database_url: str, tmp_path: Path
) -> None:
    # The history of a database made by the files the baseline replaced (V0001-V0018).
    old = tmp_path / "old"
    write(old, "V0001__extensions_and_roles.sql", "CREATE TABLE tenants (id bigint);\n")
    assert db(cli, empty_database_url, "migrate", directory=old).exit_code == 0
    before = history(empty_database_url)
    for command in ("migrate", "verify"):
        refused = db(cli, empty_database_url, command)
        assert refused.exit_code == 1, command
        assert refused.stderr.startswith(
            "error: this database predates the baseline schema (bigint ids, migrations"
            " V0001-V0018): migrate a fresh database and move the data over"
        )
    assert history(empty_database_url) == before


def test_migrate_makes_utc_the_database_time_zone_and_says_so(
    cli: Any, empty_database_url: str
) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = 'Asia/Tokyo'")
    first = db(cli, empty_database_url, "migrate")
    assert first.exit_code == 0, first.stderr
    assert "set the database's TimeZone to UTC (it was Asia/Tokyo)" in first.stderr
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SHOW TimeZone").fetchone() == ("UTC",)
    again = db(cli, empty_database_url, "migrate")
    assert "TimeZone" not in again.stderr


# `db verify`, second half: the live schema against what the migrations make.


@pytest.fixture
def scratch_prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    """The prefix of this test's scratch databases (unique, so leftovers are this test's)."""
    import uuid

    from migrationpilot_cli.db import schemadiff

    prefix = f"{schemadiff.SCRATCH_PREFIX}t{uuid.uuid4().hex[:8]}_"
    monkeypatch.setattr(schemadiff, "SCRATCH_PREFIX", prefix)
    return prefix


def scratch_databases(url: str, prefix: str) -> list[str]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
        ).fetchall()
    return [row[0] for row in found]


def notices(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What `db` commands say through notice(), which is silent when stderr is no terminal."""
    said: list[str] = []
    monkeypatch.setattr("migrationpilot_cli.commands.db.notice", said.append)
    return said


def test_verify_compares_the_live_schema_and_passes_on_a_migrated_database(
    cli: Any, database_url: str, scratch_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = notices(monkeypatch)
    result = db(cli, database_url, "verify")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", ""), result.stderr
    assert said == [
        f"ok: {len(PACKAGED)} applied migrations match their files, and the live schema"
        " matches what they make"
    ]
    assert scratch_databases(database_url, scratch_prefix) == []


def test_verify_names_each_schema_difference_and_nothing_else(
    cli: Any, database_url: str, scratch_prefix: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE business_rules ADD COLUMN note text")
        conn.execute("DROP INDEX idx_audit_created")
        conn.execute(
            "CREATE OR REPLACE FUNCTION current_user_id() RETURNS uuid"
            " LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT NULL::uuid $$"
        )
    result = db(cli, database_url, "verify")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: verification failed: the live schema differs from what the migrations make:",
        "column business_rules.note: in the database, not made by the migrations",
        "index idx_audit_created: missing",
        "function current_user_id(): body differs",
    ]
    assert scratch_databases(database_url, scratch_prefix) == []


def test_verify_drops_the_scratch_database_when_the_build_fails_or_is_interrupted(
    cli: Any,
    empty_database_url: str,
    tmp_path: Path,
    scratch_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Applied to a database that had a table of its own: on a new database it fails.
    directory = tmp_path / "migrations"
    write(directory, "V0001__seed.sql", "INSERT INTO seed VALUES (1);\n")
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE seed (id int)")
    assert db(cli, empty_database_url, "migrate", directory=directory).exit_code == 0
    failed = db(cli, empty_database_url, "verify", directory=directory)
    assert failed.exit_code == 1
    assert failed.stderr.startswith(
        "error: cannot compare the live schema: the migrations fail on a new database:"
        ' V0001__seed.sql:1: relation "seed" does not exist'
    )
    assert scratch_databases(empty_database_url, scratch_prefix) == []

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(migrations, "migrate", interrupted)
    stopped = db(cli, empty_database_url, "verify", directory=directory)
    assert stopped.exit_code == 130  # after the scratch database was made: Ctrl-C mid-build
    assert scratch_databases(empty_database_url, scratch_prefix) == []


def test_verify_without_createdb_fails_unless_told_to_check_checksums_only(
    cli: Any, database_url: str, scratch_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with probe_role(database_url, "NOLOGIN NOCREATEDB") as role:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"GRANT SELECT ON migrationpilot_schema_history TO {role}")
            conn.execute("ALTER TABLE business_rules DISABLE ROW LEVEL SECURITY")
        said = notices(monkeypatch)
        as_role = psycopg.conninfo.make_conninfo(database_url, options=f"-c role={role}")
        refused = db(cli, as_role, "verify")
        checksums = db(cli, as_role, "verify", "--checksums-only")
    # Without the flag, `db verify && db migrate` must not pass what it could not compare.
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: cannot compare the live schema: {role} may not create a scratch database"
        " (CREATEDB); run db verify as a role that may, or pass --checksums-only to check the"
        " files alone\n"
    )
    assert (checksums.exit_code, checksums.stderr) == (0, ""), checksums.stderr
    assert said == [
        f"ok: {len(PACKAGED)} applied migrations match their files"
        " (checksums only: the live schema was not compared)"
    ]
    assert scratch_databases(database_url, scratch_prefix) == []


def test_verify_names_rewrite_rules_and_grants_to_any_role(
    cli: Any, database_url: str, scratch_prefix: str
) -> None:
    with probe_role(database_url) as role:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("CREATE RULE drop_audit AS ON INSERT TO audit_logs DO INSTEAD NOTHING")
            conn.execute(f"GRANT SELECT ON business_rules TO {role}")
            conn.execute(f"GRANT UPDATE (name) ON business_rules TO {role}")
            conn.execute(f"GRANT EXECUTE ON FUNCTION current_organization_id() TO {role}")
            conn.execute("GRANT DELETE ON audit_logs TO migrationpilot_app WITH GRANT OPTION")
        result = db(cli, database_url, "verify")
    extra = "in the database, not made by the migrations"
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: verification failed: the live schema differs from what the migrations make:",
        f"rule drop_audit on audit_logs: {extra}",
        f"grant DELETE on table audit_logs to migrationpilot_app: {extra}",
        f"grant EXECUTE on function current_organization_id() to {role}: {extra}",
        f"grant SELECT on table business_rules to {role}: {extra}",
        f"grant UPDATE on column business_rules.name to {role}: {extra}",
    ]
    assert scratch_databases(database_url, scratch_prefix) == []


def test_verify_names_each_object_not_owned_by_the_history_tables_owner(
    cli: Any, database_url: str, scratch_prefix: str
) -> None:
    with probe_role(database_url) as role:
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute("SELECT current_user::text").fetchone()
            owner = row[0] if row else ""
            # The new owner bypasses the table's row level security; a definer function
            # now runs as another role.
            conn.execute(f"ALTER TABLE business_rules OWNER TO {role}")
            conn.execute(f"ALTER FUNCTION current_organization_id() OWNER TO {role}")
            conn.execute(f"ALTER TYPE rule_category OWNER TO {role}")
        result = db(cli, database_url, "verify")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: verification failed: the live schema differs from what the migrations make:",
        f"enum rule_category: owned by {role}, not by {owner}",
        f"function current_organization_id(): owned by {role}, not by {owner}",
        f"table business_rules: owned by {role}, not by {owner}",
    ]
    assert scratch_databases(database_url, scratch_prefix) == []


def test_verify_names_a_definer_function_that_public_may_execute(
    cli: Any, database_url: str, scratch_prefix: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("GRANT EXECUTE ON FUNCTION current_tenant_id() TO PUBLIC")
        # An invoker function open to PUBLIC is the grant difference only.
        conn.execute("GRANT EXECUTE ON FUNCTION utf8_size(text) TO PUBLIC")
    result = db(cli, database_url, "verify")
    extra = "in the database, not made by the migrations"
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: verification failed: the live schema differs from what the migrations make:",
        f"grant EXECUTE on function current_tenant_id() to PUBLIC: {extra}",
        f"grant EXECUTE on function utf8_size(content text) to PUBLIC: {extra}",
        "function current_tenant_id(): SECURITY DEFINER and executable by PUBLIC",
    ]
    assert scratch_databases(database_url, scratch_prefix) == []


def test_verify_names_what_lets_the_application_role_past_row_level_security(
    cli: Any, database_url: str, scratch_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migrationpilot_cli.db import schemadiff

    # A stand-in for migrationpilot_app: the real one is cluster-wide, shared with every
    # other test on this server, and must keep its row level security meanwhile.
    with probe_role(database_url, "NOLOGIN SUPERUSER BYPASSRLS") as role:
        monkeypatch.setattr(schemadiff, "APP_ROLE", role)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"GRANT pg_write_all_data TO {role}")
        result = db(cli, database_url, "verify")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: verification failed: the live schema differs from what the migrations make:",
        f"role {role}: has BYPASSRLS",
        f"role {role}: has SUPERUSER",
        f"role {role}: member of pg_write_all_data",
    ]
    assert scratch_databases(database_url, scratch_prefix) == []


def test_migrate_by_a_role_that_does_not_own_the_database_says_who_may_set_the_zone(
    cli: Any, empty_database_url: str
) -> None:
    role = f"mp_migrator_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = 'Asia/Tokyo'")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
        conn.execute(f'GRANT CREATE ON DATABASE "{name}" TO {role}')
        conn.execute(f"GRANT migrationpilot_app TO {role}")
    try:
        url = psycopg.conninfo.make_conninfo(empty_database_url, user=role)
        first = cli("--database-url", url, "db", "migrate")
        assert first.exit_code == 0, first.stderr
        assert f'only its owner may set it: ask them to run ALTER DATABASE "{name}"' in first.stderr
        again = cli("--database-url", url, "db", "migrate")
        assert again.exit_code == 0, again.stderr
    finally:
        with psycopg.connect(empty_database_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role} CASCADE")
        with psycopg.connect(empty_database_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")
