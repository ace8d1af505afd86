"""The config file, its profiles, and the precedence of every setting: flag > environment >
profile > default, each setting on its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import CONSOLE_SCRIPT, rows

PROFILES = """
default_profile = "local"

[profiles.local]
database_url = "postgresql://prof:s3cret@profile.example/mp"
user = "Profile@Acme.test"
format = "csv"
wait = 3

[profiles.other]
database_url = "postgresql://other@other.example/mp"
user = "other@acme.test"
format = "jsonl"
wait = 4
"""
PROFILE_SOURCE = "profile {name} in {path}"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """Where the config file is with nothing configured: $XDG_CONFIG_HOME (set by conftest)."""
    path = tmp_path / "config" / "migrationpilot" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


def shown(cli: Any, *flags: str) -> dict[str, tuple[Any, str]]:
    """``config show`` as {setting: (value, source)}."""
    result = cli(*flags, "config", "show", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {row["setting"]: (row["value"], row["source"]) for row in json.loads(result.stdout)}


def test_nothing_configured_shows_every_default(
    cli: Any, config_file: Path, tmp_path: Path
) -> None:
    settings = shown(cli)
    assert settings == {
        "profile": (None, "default: none"),
        "config_file": (str(config_file), "XDG_CONFIG_HOME; not created"),
        "database_url": (None, "embedded"),
        "acting_user": (None, "default: operator mode"),
        "format": (None, "default: table on a terminal, tsv when piped"),
        "wait": (0, "default: no retrying"),
        "home": (str(tmp_path / "home"), "MIGRATIONPILOT_HOME"),
    }
    assert not (tmp_path / "home" / "postgres").exists()  # showing starts nothing


def test_the_default_profile_supplies_every_setting_with_the_password_masked(
    cli: Any, config_file: Path
) -> None:
    config_file.write_text(PROFILES)
    source = PROFILE_SOURCE.format(name="local", path=config_file)
    settings = shown(cli)
    assert settings["profile"] == ("local", f"default_profile in {config_file}")
    assert settings["config_file"] == (str(config_file), "XDG_CONFIG_HOME")
    assert settings["database_url"] == ("postgresql://prof:***@profile.example/mp", source)
    assert settings["acting_user"] == ("profile@acme.test", source)
    assert settings["format"] == ("csv", source)
    assert settings["wait"] == (3, source)
    table = cli("config", "show", "--format", "table")
    assert "s3cret" not in table.stdout and "prof:***@profile.example" in table.stdout


Layer = tuple[Callable[[pytest.MonkeyPatch, list[str]], None], Any, str]


def _flag(*args: str) -> Callable[[pytest.MonkeyPatch, list[str]], None]:
    return lambda monkeypatch, flags: flags.extend(args)


def _env(name: str, value: str) -> Callable[[pytest.MonkeyPatch, list[str]], None]:
    return lambda monkeypatch, flags: monkeypatch.setenv(name, value)


def _nothing(monkeypatch: pytest.MonkeyPatch, flags: list[str]) -> None:
    pass


PRECEDENCE: dict[str, list[Layer]] = {
    "profile": [
        (_flag("--profile", "other"), "other", "--profile"),
        (_env("MIGRATIONPILOT_PROFILE", "other"), "other", "MIGRATIONPILOT_PROFILE"),
        (_nothing, "local", "default_profile in {path}"),
    ],
    "database_url": [
        (
            _flag("--database-url", "postgresql://f@flag/mp"),
            "postgresql://f@flag/mp",
            "--database-url",
        ),
        (
            _env("MIGRATIONPILOT_DATABASE_URL", "postgresql://e:pw@env/mp"),
            "postgresql://e:***@env/mp",
            "MIGRATIONPILOT_DATABASE_URL",
        ),
        (
            _env("DATABASE_URL", "postgresql://d@dburl/mp"),
            "postgresql://d@dburl/mp",
            "DATABASE_URL",
        ),
        (_env("PGHOST", "/nowhere"), None, "libpq environment (PGHOST)"),
        (_nothing, "postgresql://prof:***@profile.example/mp", "profile local in {path}"),
    ],
    "acting_user": [
        (_flag("--as", "Flag@acme.test"), "flag@acme.test", "--as"),
        (_env("MIGRATIONPILOT_USER", "env@acme.test"), "env@acme.test", "MIGRATIONPILOT_USER"),
        (_nothing, "profile@acme.test", "profile local in {path}"),
    ],
    "format": [
        (_env("MIGRATIONPILOT_FORMAT", "json"), "json", "MIGRATIONPILOT_FORMAT"),
        (_nothing, "csv", "profile local in {path}"),
    ],
    "wait": [
        (_flag("--wait", "7.5"), 7.5, "--wait"),
        (_env("MIGRATIONPILOT_WAIT", "5"), 5, "MIGRATIONPILOT_WAIT"),
        (_nothing, 3, "profile local in {path}"),
    ],
}


@pytest.mark.parametrize("setting", PRECEDENCE)
def test_each_setting_flag_then_environment_then_profile(
    cli: Any, config_file: Path, setting: str
) -> None:
    """With every source present the highest wins; remove it and the next one shows."""
    config_file.write_text(PROFILES)
    layers = PRECEDENCE[setting]
    for top in range(len(layers)):
        with pytest.MonkeyPatch.context() as monkeypatch:
            flags: list[str] = []
            for apply, _, _ in layers[top:]:
                apply(monkeypatch, flags)
            _, value, source = layers[top]
            assert shown(cli, *flags)[setting] == (value, source.format(path=config_file))


def test_settings_from_different_sources_combine(
    cli: Any, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text(PROFILES)
    monkeypatch.setenv("MIGRATIONPILOT_PROFILE", "other")
    monkeypatch.setenv("MIGRATIONPILOT_WAIT", "9")
    settings = shown(cli, "--as", "flag@acme.test")
    other = PROFILE_SOURCE.format(name="other", path=config_file)
    assert settings["profile"] == ("other", "MIGRATIONPILOT_PROFILE")
    assert settings["acting_user"] == ("flag@acme.test", "--as")
    assert settings["wait"] == (9, "MIGRATIONPILOT_WAIT")
    assert settings["database_url"] == ("postgresql://other@other.example/mp", other)
    assert settings["format"] == ("jsonl", other)


def test_migrationpilot_config_names_another_file(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "team.toml"
    elsewhere.write_text("[profiles.ci]\nwait = 60\n")
    monkeypatch.setenv("MIGRATIONPILOT_CONFIG", str(elsewhere))
    assert cli("config", "path").stdout == f"{elsewhere}\n"
    settings = shown(cli, "--profile", "ci")
    assert settings["config_file"] == (str(elsewhere), "MIGRATIONPILOT_CONFIG")
    assert settings["wait"] == (60, f"profile ci in {elsewhere}")


def test_config_path_follows_xdg_config_home(cli: Any, config_file: Path) -> None:
    result = cli("config", "path")
    assert (result.exit_code, result.stdout) == (0, f"{config_file}\n")


def test_without_xdg_the_path_is_the_platforms_default(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On Linux the path is spelled out rather than asked of platformdirs (a module import
    # per command): it must stay what platformdirs says.
    import platformdirs

    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("MIGRATIONPILOT_CONFIG", raising=False)
    expected = Path(platformdirs.user_config_dir("migrationpilot", appauthor=False))
    result = cli("config", "path")
    assert (result.exit_code, result.stdout) == (0, f"{expected / 'config.toml'}\n")


def test_config_profiles_lists_them_with_the_default_marked(cli: Any, config_file: Path) -> None:
    config_file.write_text(PROFILES + '\n[profiles.svc]\nservice = "mp prod"\n')
    listed = json.loads(cli("config", "profiles", "--format", "json").stdout)
    assert [(p["profile"], p["default"], p["database"]) for p in listed] == [
        ("local", True, "postgresql://prof:***@profile.example/mp"),
        ("other", False, "postgresql://other@other.example/mp"),
        ("svc", False, "service='mp prod'"),
    ]
    assert cli("config", "profiles", "-q").stdout == "local\nother\nsvc\n"


def test_a_profile_connects_acts_and_formats(
    acme: Any, cli: Any, database_url: str, config_file: Path
) -> None:
    """The profile's database, acting user and format reach the command, each one."""
    config_file.write_text(
        f'[profiles.ana]\ndatabase_url = "{database_url}"\nuser = "ana@acme.test"\n'
        'format = "json"\n'
    )
    visible = cli("--profile", "ana", "orgs", "list")
    assert visible.exit_code == 0, visible.stderr
    assert [org["slug"] for org in json.loads(visible.stdout)] == ["acme-pay"]  # RLS: ana's
    # --format beats the profile's format and --as its user.
    tsv = cli("--profile", "ana", "--as", "bob@globex.test", "orgs", "list", "--format", "tsv")
    assert [line.split("\t")[1] for line in tsv.stdout.splitlines()] == ["globex-ops"]


def test_the_configured_format_yields_to_the_environment_and_to_format(
    cli: Any, database_url: str, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text(
        f'default_profile = "p"\n[profiles.p]\ndatabase_url = "{database_url}"\nformat = "json"\n'
    )
    assert json.loads(cli("db", "status").stdout)[0]["version"] == 1
    monkeypatch.setenv("MIGRATIONPILOT_FORMAT", "csv")
    assert cli("db", "status").stdout.startswith("version,description,")
    assert cli("db", "status", "--format", "tsv").stdout.startswith("1\t")


def test_a_profile_may_name_a_libpq_service(
    cli: Any, database_url: str, config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parameters = psycopg.conninfo.conninfo_to_dict(database_url)
    service_file = tmp_path / "pg_service.conf"
    service_file.write_text(
        "[mp test]\n" + "".join(f"{key}={value}\n" for key, value in parameters.items())
    )
    monkeypatch.setenv("PGSERVICEFILE", str(service_file))
    config_file.write_text('[profiles.svc]\nservice = "mp test"\n')
    result = cli("--profile", "svc", "db", "status", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert {row["state"] for row in json.loads(result.stdout)} == {"applied"}


def test_libpq_environment_beats_the_profile(
    cli: Any, database_url: str, config_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A one-off `PGHOST=... migrationpilot ...` wins over the configured profile (documented)."""
    config_file.write_text(
        f'default_profile = "p"\n[profiles.p]\ndatabase_url = "{database_url}"\n'
    )
    assert cli("db", "status").exit_code == 0
    monkeypatch.setenv("PGHOST", str(tmp_path / "no-server-here"))
    refused = cli("db", "status")
    assert refused.exit_code == 3
    assert "libpq environment (PGHOST)" in refused.stderr


BAD_FILES = [
    (
        "[profiles.local\nwait = 3\n",
        "not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 16)",
    ),
    ('colour = "always"\n', "unknown key 'colour'; expected default_profile, [profiles]"),
    (
        '[profiles.a]\nuser = "a@acme.test"\nformt = "json"\n',
        "[profiles.a]: unknown key 'formt'; expected database_url, service, user, format, wait",
    ),
    ('[profiles.a]\nwait = "5"\n', "[profiles.a]: wait must be a number of seconds >= 0, not '5'"),
    (
        "[profiles.a]\nwait = true\n",
        "[profiles.a]: wait must be a number of seconds >= 0, not True",
    ),
    ("[profiles.a]\nuser = 3\n", "[profiles.a]: user must be a non-empty string, not 3"),
    (
        '[profiles.a]\nformat = "xml"\n',
        "[profiles.a]: format 'xml': expected one of table, json, jsonl, csv, tsv",
    ),
    (
        '[profiles.a]\ndatabase_url = "postgresql:///mp"\nservice = "mp"\n',
        "[profiles.a]: give database_url or service, not both",
    ),
    ("profiles = 3\n", "'profiles' must be a table of [profiles.NAME] tables"),
]


@pytest.mark.parametrize("content, problem", BAD_FILES)
def test_a_bad_config_file_exits_2_naming_the_file_and_the_problem_and_writes_nothing(
    cli: Any,
    database_url: str,
    conn: psycopg.Connection[Any],
    config_file: Path,
    content: str,
    problem: str,
) -> None:
    config_file.write_text(content)
    result = cli("--database-url", database_url, "tenants", "create", "Acme", "--slug", "acme")
    assert result.exit_code == 2
    assert result.stderr == f"error: {config_file}: {problem}\n"
    assert rows(conn, "SELECT count(*) FROM tenants") == [(0,)]
    # Help never reads the file, and `config path` points at what to fix.
    assert cli("tenants", "create", "--help").exit_code == 0
    assert cli("config", "path").stdout == f"{config_file}\n"


@pytest.mark.parametrize(
    "flags, variables, message",
    [
        (
            ["--profile", "prod"],
            {},
            "--profile prod: no profile 'prod' in {path}; profiles: local, other",
        ),
        (
            [],
            {"MIGRATIONPILOT_PROFILE": "prod"},
            "MIGRATIONPILOT_PROFILE prod: no profile 'prod' in {path}; profiles: local, other",
        ),
        (
            [],
            {"MIGRATIONPILOT_FORMAT": "yaml"},
            "MIGRATIONPILOT_FORMAT 'yaml': expected one of table, json, jsonl, csv, tsv",
        ),
        (
            [],
            {"MIGRATIONPILOT_WAIT": "soon"},
            "MIGRATIONPILOT_WAIT='soon': expected a number of seconds >= 0",
        ),
        (
            [],
            {"MIGRATIONPILOT_WAIT": "-1"},
            "MIGRATIONPILOT_WAIT='-1': expected a number of seconds >= 0",
        ),
    ],
)
def test_unknown_profiles_and_bad_values_exit_2_before_any_work(
    cli: Any,
    database_url: str,
    conn: psycopg.Connection[Any],
    config_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    variables: dict[str, str],
    message: str,
) -> None:
    config_file.write_text(PROFILES)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    result = cli(*flags, "--database-url", database_url, "tenants", "create", "A", "--slug", "a")
    assert (result.exit_code, result.stderr) == (2, f"error: {message.format(path=config_file)}\n")
    assert rows(conn, "SELECT count(*) FROM tenants") == [(0,)]


def test_an_unknown_default_profile_is_named_and_a_missing_file_has_no_profiles(
    cli: Any, config_file: Path
) -> None:
    config_file.write_text('default_profile = "prod"\n')
    result = cli("config", "show")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: default_profile prod: no profile 'prod' in {config_file}; profiles: none\n",
    )
    config_file.unlink()
    missing = cli("--profile", "prod", "config", "show")
    assert (missing.exit_code, missing.stderr) == (
        2,
        f"error: --profile prod: no profile 'prod' in {config_file} (which does not exist);"
        " profiles: none\n",
    )


def test_a_negative_wait_flag_is_bad_usage(cli: Any) -> None:
    result = cli("--wait", "-1", "config", "show")
    assert result.exit_code == 2
    assert "--wait" in result.stderr and len(result.stderr.splitlines()) == 1


def test_help_never_reads_the_config_file(config_file: Path) -> None:
    config_file.write_text("[profiles.broken\n")
    for command in (["--help"], ["rules", "list", "--help"], ["--profile", "x", "db", "--help"]):
        result = subprocess.run([str(CONSOLE_SCRIPT), *command], capture_output=True, text=True)
        assert (result.returncode, result.stderr) == (0, ""), command
    probe = "import sys, migrationpilot_cli.app; print('tomllib' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert imported.stdout == "False\n"
