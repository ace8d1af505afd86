"""`db migrate`, `db status`, `db verify`, `db new`: the migration engine through the CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migrationpilot_cli.db import migrations
from tests.conftest import CONSOLE_SCRIPT

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


def test_new_writes_the_next_numbered_file(cli: Any, migrations_dir: Path) -> None:
    result = cli("db", "new", "Add rule hash!", "--migrations-dir", str(migrations_dir))
    assert result.exit_code == 0
    created = migrations_dir / "V0003__add_rule_hash.sql"
    assert result.stdout.strip() == str(created)
    assert created.read_text().startswith("-- Add rule hash!\n")
    assert cli("db", "new", "!!!", "--migrations-dir", str(migrations_dir)).exit_code == 2


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
