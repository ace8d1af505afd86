"""The output options every listing command shares: --fields, --header/--no-header, and
timestamps (local in tables, exact UTC in machine formats)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import pytest

from migrationpilot_cli.queries import rules
from tests.commandtree import leaves
from tests.conftest import rows

UNREACHABLE = "postgresql://ana@127.0.0.1:1/mp"


@pytest.fixture
def demo(mp: Any) -> Any:
    assert mp("demo", "load").exit_code == 0
    return mp


def _listing_commands() -> list[tuple[str, ...]]:
    """Every command path in the app that takes --fields."""
    return [path for path, command in leaves() if any(p.name == "fields" for p in command.params)]


def test_the_listing_commands_take_fields() -> None:
    listed = set(_listing_commands())
    for path in [
        ("rules", "list"),
        ("rules", "history"),
        ("files", "list"),
        ("projects", "list"),
        ("routing", "list"),
        ("tests", "list"),
        ("generated", "list"),
        ("users", "list"),
        ("orgs", "list"),
        ("tenants", "list"),
        ("db", "status"),
        ("review", "approve"),
    ]:
        assert path in listed


@pytest.mark.parametrize("path", _listing_commands(), ids=" ".join)
def test_fields_help_lists_the_fields_without_a_database(cli: Any, path: tuple[str, ...]) -> None:
    # Answered while parsing: nothing is connected to, required options may be missing.
    result = cli("--database-url", UNREACHABLE, *path, "--fields", "help")
    assert result.exit_code == 0, result.stderr
    names = result.stdout.splitlines()
    assert names and all(name.isidentifier() for name in names), names
    assert len(set(names)) == len(names)


def test_fields_choose_the_columns_of_every_format(demo: Any) -> None:
    def listed(*options: str) -> str:
        result = demo("rules", "list", "--pending", "--fields", "id, name,confidence,id", *options)
        assert result.exit_code == 0, result.stderr
        return str(result.stdout)

    as_json = json.loads(listed("--format", "json"))
    assert as_json and all(list(row) == ["id", "name", "confidence"] for row in as_json)
    # Machine formats carry the full uuid, in its canonical form.
    assert all(str(UUID(row["id"])) == row["id"] for row in as_json)
    jsonl = [json.loads(line) for line in listed("--format", "jsonl").splitlines()]
    assert jsonl == as_json
    parsed = list(csv.reader(io.StringIO(listed("--format", "csv"))))
    assert parsed[0] == ["id", "name", "confidence"]
    assert [row[0] for row in parsed[1:]] == [row["id"] for row in as_json]
    tsv = listed("--format", "tsv")
    assert tsv == listed()  # piped default: tsv without a header
    first = tsv.splitlines()[0].split("\t")
    assert first == [str(as_json[0]["id"]), as_json[0]["name"], f"{as_json[0]['confidence']:.3f}"]
    table = listed("--format", "table")
    assert as_json[0]["name"] in table
    assert "confidence" in table and "review status" not in table and "category" not in table
    # A table shows the first 8 hex digits of an id, as a listing's reader types it back.
    assert as_json[0]["id"][:8] in table and as_json[0]["id"] not in table
    # -q is unaffected: still the ids.
    assert listed("-q").split() == [str(row["id"]) for row in as_json]


def test_fields_turn_the_table_to_what_was_asked(demo: Any) -> None:
    # db status hides checksums from a table; asking for one shows it.
    table = demo("db", "status", "--format", "table", "--fields", "version,checksum").stdout
    assert "checksum" in table and "description" not in table


def test_an_unknown_field_exits_2_naming_the_valid_ones(cli: Any) -> None:
    result = cli("--database-url", UNREACHABLE, "rules", "list", "--fields", "id,nmae")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --fields: unknown field 'nmae'; expected some of: "
        + ", ".join(rules.COLUMNS)
        + "\n"
    )
    empty = cli("--database-url", UNREACHABLE, "rules", "list", "--fields", " , ")
    assert (empty.exit_code, empty.stderr.count("\n")) == (2, 1)
    assert "no field given" in empty.stderr


def test_an_unknown_field_is_refused_before_a_review_is_written(
    demo: Any, conn: psycopg.Connection[Any]
) -> None:
    pending = demo("rules", "list", "--pending", "-q").stdout.split()
    before = rows(conn, "SELECT count(*) FROM audit_logs")
    refused = demo("--as", "ana@acme.test", "review", "approve", pending[0], "--fields", "id,nope")
    assert refused.exit_code == 2
    assert "unknown field 'nope'" in refused.stderr
    assert rows(
        conn, "SELECT review_status::text FROM business_rules WHERE id = %s", pending[0]
    ) == [("pending",)]
    assert rows(conn, "SELECT count(*) FROM audit_logs") == before
    approved = demo(
        "--as", "ana@acme.test", "review", "approve", pending[0], "--fields", "id,outcome"
    )
    assert approved.exit_code == 0, approved.stderr
    assert approved.stdout == f"{pending[0]}\treviewed\n"


def test_header_and_no_header(demo: Any) -> None:
    def listed(*options: str) -> list[str]:
        result = demo("projects", "list", "--fields", "id,name", *options)
        assert result.exit_code == 0, result.stderr
        return list(result.stdout.splitlines())

    body = listed("--format", "tsv")
    assert body[0].split("\t")[1] == "Loans core"
    assert listed("--format", "tsv", "--header") == ["id\tname", *body]
    assert listed("--format", "tsv", "--no-header") == body
    assert listed("--header") == ["id\tname", *body]  # piped default is tsv
    with_header = listed("--format", "csv")
    assert with_header[0] == "id,name"
    assert listed("--format", "csv", "--no-header") == with_header[1:]


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[ZoneInfo]:
    """This process in Kolkata (+05:30), the database session in New York (PGTZ)."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    monkeypatch.setenv("PGTZ", "America/New_York")
    time.tzset()
    yield ZoneInfo("Asia/Kolkata")
    monkeypatch.undo()
    time.tzset()


def test_timestamps_are_utc_for_machines_and_local_in_tables(
    demo: Any, conn: psycopg.Connection[Any], far_from_utc: ZoneInfo
) -> None:
    rule_id = UUID(demo("rules", "list", "-q").stdout.split()[0])
    stored = rows(conn, "SELECT extracted_at FROM business_rules WHERE id = %s", rule_id)[0][0]
    exact = stored.astimezone(dt.UTC).isoformat()
    assert exact.endswith("+00:00")

    def listed(fmt: str) -> str:
        result = demo("rules", "list", "--fields", "id,extracted_at", "--format", fmt)
        assert result.exit_code == 0, result.stderr
        return str(result.stdout)

    by_id = {row["id"]: row["extracted_at"] for row in json.loads(listed("json"))}
    assert by_id[str(rule_id)] == exact
    assert f"{rule_id}\t{exact}\n" in listed("tsv")
    assert f"{rule_id},{exact}\n" in listed("csv")
    # Records (show) go through the same conversion.
    shown = json.loads(demo("rules", "show", str(rule_id), "--format", "json").stdout)
    assert shown["extracted_at"] == exact
    local = stored.astimezone(far_from_utc).strftime("%Y-%m-%d %H:%M:%S")
    assert local in listed("table")
