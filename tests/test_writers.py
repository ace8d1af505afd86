"""Two writers at once, and a server that goes away under a command.

Imports into one project take the project's writer lock: a second one waits its turn (at
most --lock-timeout, then exit 1 naming who holds it) instead of failing on the first one's
rows. A connection the server ends in the middle of any command is exit 3 with one line, and
the command's transaction leaves nothing behind. The commands run as real processes.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from migrationpilot_cli.db import locks
from tests.conftest import CONSOLE_SCRIPT, rows

PROJECT = "Loans core"


@pytest.fixture
def demo(mp: Any) -> Any:
    result = mp("demo", "load")
    assert result.exit_code == 0, result.stderr
    return mp


def start(database_url: str, *args: str) -> subprocess.Popen[str]:
    command = [str(CONSOLE_SCRIPT), "--database-url", database_url, *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr


def project_id(conn: psycopg.Connection[Any]) -> Any:
    return rows(conn, "SELECT id FROM projects WHERE name = %s", PROJECT)[0][0]


def legacy_tree(root: Path, files: int) -> Path:
    root.mkdir()
    for number in range(files):
        (root / f"PROG{number:04}.cbl").write_text(
            "".join(f"       MOVE {line} TO X-{number}.\n" for line in range(40))
        )
    return root


def count(conn: psycopg.Connection[Any], table: str) -> int:
    found = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    return int(found.fetchone()[0])  # type: ignore[index]


def rule_file(path: Path, records: int) -> Path:
    record = {
        "category": "calculation",
        "confidence": 0.9,
        "description": "d",
        "logic": "l",
        "source_file": "src/LOANCALC.cbl",
        "source_start_line": 30,
        "source_end_line": 33,
    }
    path.write_text("".join(json.dumps({**record, "name": f"r{n}"}) + "\n" for n in range(records)))
    return path


def test_two_imports_of_one_tree_at_once_both_succeed(
    demo: Any, database_url: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    # The same new tree, twice at once: one adds every file, the other then finds them
    # unchanged; neither fails on the other's rows.
    tree = legacy_tree(tmp_path / "tree", 300)
    both = [start(database_url, "files", "import", str(tree), "-p", PROJECT, "--format", "json")]
    both.append(
        start(database_url, "files", "import", str(tree), "-p", PROJECT, "--format", "json")
    )
    outcomes = [finish(process) for process in both]
    assert [code for code, _, _ in outcomes] == [0, 0], [err for _, _, err in outcomes]
    summaries = sorted((json.loads(out) for _, out, _ in outcomes), key=lambda s: -s["added"])
    assert [(s["added"], s["unchanged"]) for s in summaries] == [(300, 0), (0, 300)]
    stored = rows(conn, "SELECT count(*) FROM source_files WHERE path LIKE 'PROG%%'")
    assert stored == [(300,)]


@pytest.mark.parametrize(
    ("command", "table"),
    [
        (("rules", "import", "{rules}"), "business_rules"),
        (("files", "import", "{tree}"), "source_files"),
    ],
)
def test_an_import_waits_for_the_projects_other_writer_and_says_how_long(
    demo: Any,
    database_url: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    command: tuple[str, ...],
    table: str,
) -> None:
    paths = {"rules": rule_file(tmp_path / "r.jsonl", 5), "tree": legacy_tree(tmp_path / "t", 3)}
    arguments = [part.format(**paths) for part in command]
    before = count(conn, table)
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (locks.project_key(project_id(conn)),))
        process = start(database_url, *arguments, "-p", PROJECT, "--format", "json")
        time.sleep(1.0)
        # Still waiting: nothing written yet.
        assert process.poll() is None
        assert count(conn, table) == before
    code, stdout, stderr = finish(process)  # the other writer let go
    assert (code, stderr) == (0, "")
    assert json.loads(stdout)["waited_seconds"] > 0
    assert count(conn, table) > before


# The operator sees when the holder connected; the app role (--as) may not, and is told the rest.
@pytest.mark.parametrize("acting", [(), ("--as", "lead@acme.test")], ids=["operator", "as a user"])
def test_the_wait_is_bounded_and_names_who_holds_the_project(
    demo: Any,
    database_url: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    acting: tuple[str, ...],
) -> None:
    rules = str(rule_file(tmp_path / "r.jsonl", 5))
    before = rows(conn, "SELECT count(*) FROM business_rules")
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("SET application_name = 'the other import'")
        other.execute("SELECT pg_advisory_lock(%s)", (locks.project_key(project_id(conn)),))
        pid = other.info.backend_pid
        importing = ("rules", "import", rules, "-p", PROJECT, "--lock-timeout", "300ms")
        code, stdout, stderr = finish(start(database_url, *acting, *importing))
    assert (code, stdout) == (1, "")
    assert stderr.startswith(
        f"error: waited 300ms for another writer of project 'Loans core' (--lock-timeout):"
        f" pid {pid} (the other import, user "
    )
    assert ("connected since" in stderr) == (not acting)
    assert stderr.endswith(" holds it; nothing was written: retry, or raise --lock-timeout\n")
    assert len(stderr.splitlines()) == 1
    assert rows(conn, "SELECT count(*) FROM business_rules") == before


@pytest.mark.parametrize("value", ["soon", "-1s", "1.5s", "1d"])
def test_a_bad_lock_timeout_is_refused_before_connecting(cli: Any, value: str) -> None:
    result = cli("--database-url", "postgresql://nobody@127.0.0.1:1/none",
                 "tests", "import", "-", "-p", PROJECT, "--lock-timeout", value)  # fmt: skip
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: --lock-timeout {value!r}: expected a duration like 500ms, 5s, 1min\n"
    )


# A command blocked on a table lock that another session holds: its server process is then
# ended (pg_terminate_backend, as an administrator or a restart does).
KILLED = [
    (("rules", "import", "{rules}", "-p", PROJECT), "business_rules"),
    (("files", "import", "{tree}", "-p", PROJECT), "source_files"),
    (("tests", "import", "{cases}", "-p", PROJECT), "test_cases"),
    (("rules", "list", "--project", PROJECT), "business_rules"),
    (("rules", "export", "-p", PROJECT, "--format", "json"), "business_rules"),
    (("rules", "export", "-p", PROJECT, "--format", "csv"), "business_rules"),
    (("review", "approve", "{rule}"), "business_rules"),
    (
        ("routing", "add", "-p", PROJECT, "--name", "n", "--pattern", "/n/*", "--target", "java"),
        "routing_rules",
    ),
    (
        ("projects", "create", "P2", "--source", "cobol", "--target", "java", "--org", "acme-pay"),
        "projects",
    ),
]


@pytest.mark.parametrize(
    ("command", "table"),
    KILLED,
    ids=[
        " ".join(c[:2] + c[c.index("--format") :][:2] if "--format" in c else c[:2])
        for c, _ in KILLED
    ],
)
def test_a_connection_ended_mid_command_is_exit_3_and_leaves_nothing_behind(
    demo: Any,
    database_url: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    command: tuple[str, ...],
    table: str,
) -> None:
    rule = rows(conn, "SELECT id FROM business_rules WHERE review_status = 'pending' LIMIT 1")
    (tmp_path / "cases.jsonl").write_text(
        json.dumps({"rule_id": str(rule[0][0]), "name": "c", "inputs": {}, "expected": 1}) + "\n"
    )
    paths = {
        "rules": rule_file(tmp_path / "r.jsonl", 200),
        "tree": legacy_tree(tmp_path / "t", 20),
        "cases": tmp_path / "cases.jsonl",
        "rule": str(rule[0][0]),
    }
    arguments = [part.format(**paths) for part in command]
    acting = [] if command[0] == "projects" else ["--as", "lead@acme.test"]
    before = _everything(conn)
    with psycopg.connect(database_url) as blocker:
        blocker.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table))
        )
        process = start(database_url, *acting, *arguments)
        pid = _wait_until_blocked(conn, process)
        rows(conn, "SELECT pg_terminate_backend(%s)", pid)
        code, _, stderr = finish(process)
    assert code == 3, stderr
    assert stderr == "error: lost the database connection: terminating connection due to" \
        " administrator command\n"  # fmt: skip
    assert _everything(conn) == before


def test_an_export_to_a_file_cut_short_leaves_no_file(
    demo: Any, database_url: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    # -o writes under a temporary name and puts the file in place only when it is whole.
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "rules.json"
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE business_rules IN ACCESS EXCLUSIVE MODE")
        process = start(database_url, "rules", "export", "-p", PROJECT, "--format", "json",
                        "-o", str(target))  # fmt: skip
        rows(conn, "SELECT pg_terminate_backend(%s)", _wait_until_blocked(conn, process))
        code, _, stderr = finish(process)
    assert code == 3, stderr
    assert list(target.parent.iterdir()) == []
    whole = finish(start(database_url, "rules", "export", "-p", PROJECT, "-o", str(target)))
    assert whole[0] == 0, whole[2]
    assert [p.name for p in target.parent.iterdir()] == ["rules.json"]
    assert target.read_text().startswith("# Business rules of Loans core")
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # as open() makes it, not 0600


def _wait_until_blocked(conn: psycopg.Connection[Any], process: subprocess.Popen[str]) -> int:
    for _ in range(400):
        found = rows(
            conn,
            "SELECT pid FROM pg_stat_activity"
            " WHERE application_name LIKE 'migrationpilot %%' AND wait_event_type = 'Lock'",
        )
        if found:
            return int(found[0][0])
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the command never waited for the table lock")


def _everything(conn: psycopg.Connection[Any]) -> dict[str, int]:
    tables = ["business_rules", "rule_versions", "source_files", "test_cases", "routing_rules",
              "projects", "audit_logs"]  # fmt: skip
    return {table: count(conn, table) for table in tables}
