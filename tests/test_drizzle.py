"""The design's schema is a contract: an application written against the design's Drizzle
schema (tests/drizzle/, the files of ../shared/contract/ verbatim) runs unchanged on a database
that our migrations made. tests/drizzle/conformance.ts is that application; this test runs it
with Node and then checks, with plain SQL, what the database filled in for it.

Needs `node` and `npm` on PATH; without them the test is skipped and says so, unless
MIGRATIONPILOT_REQUIRE_NODE=1 (set by .ci/run), where that is a failure. The npm packages
(package-lock.json) are installed once into tests/drizzle/node_modules, and only when the lock
file changed since the last install.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import pytest
from psycopg import sql

from tests.conftest import rows

DRIZZLE = Path(__file__).parent / "drizzle"
LOCK_FILE = DRIZZLE / "package-lock.json"
STAMP = DRIZZLE / "node_modules" / ".installed-lock-sha256"
# Read at import: the autouse fixture of conftest.py clears MIGRATIONPILOT_* inside each test.
REQUIRE_NODE = os.environ.get("MIGRATIONPILOT_REQUIRE_NODE") == "1"


@pytest.fixture(scope="session")
def drizzle_app() -> Path:
    """tests/drizzle with its npm packages installed (npm ci, skipped when up to date)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        reason = f"{' and '.join(missing)} not on PATH: the Drizzle conformance test cannot run"
        if REQUIRE_NODE:
            pytest.fail(f"{reason} (MIGRATIONPILOT_REQUIRE_NODE=1)")
        pytest.skip(reason)
    wanted = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()
    # Two suites may start side by side (.ci/run): one installs while the other waits.
    with LOCK_FILE.open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not STAMP.exists() or STAMP.read_text() != wanted:
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"],
                cwd=DRIZZLE,
                check=True,
            )
            STAMP.write_text(wanted)
    return DRIZZLE


def node_url(conninfo: str) -> str:
    """A libpq connection string as a URL node-postgres reads (host may be a socket directory)."""
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = quote(str(params.get("user", "")), safe="")
    password = quote(str(params.get("password", "")), safe="")
    query = urlencode({key: params[key] for key in ("host", "port") if params.get(key)})
    return f"postgresql://{user}:{password}@/{quote(str(params['dbname']))}?{query}"


def test_an_application_on_the_design_schema_runs_unchanged(
    drizzle_app: Path, database_url: str
) -> None:
    result = subprocess.run(
        [str(drizzle_app / "node_modules" / ".bin" / "tsx"), "conformance.ts"],
        cwd=drizzle_app,
        env={**os.environ, "DATABASE_URL": node_url(database_url)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(result.stdout, end="")  # its summary, shown with -s or -rP
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.startswith("drizzle conformance: ok"), result.stdout

    with psycopg.connect(database_url, autocommit=True) as conn:
        check(conn)


def check(conn: psycopg.Connection[Any]) -> None:
    """What the database filled in for the application, and kept as the application gave it."""
    [(acme,)] = rows(conn, "SELECT id FROM organizations WHERE slug = 'acme-pay'")
    # The tenant taken from the only one; a project's organization from its creator (or as
    # given); every child's from its parent.
    assert rows(
        conn,
        "SELECT t.slug, count(*) FROM organizations JOIN tenants AS t"
        " ON t.id = tenant_id GROUP BY t.slug",
    ) == [("acme", 2)]
    assert rows(
        conn,
        "SELECT p.name, o.slug FROM projects AS p"
        " JOIN organizations AS o ON o.id = p.organization_id ORDER BY p.name",
    ) == [("Billing", "globex-ops"), ("Loans core", "acme-pay")]
    for table in ("users", "source_files", "generated_files", "test_cases", "routing_rules"):
        query = sql.SQL("SELECT DISTINCT organization_id FROM {}").format(sql.Identifier(table))
        assert conn.execute(query).fetchall() == [(acme,)], table
    # Stored as given.
    assert rows(conn, "SELECT email FROM users WHERE lower(email) = 'ana.lima@acme.test'") == [
        ("Ana.Lima@Acme.test",)
    ]
    # Our columns, computed from the content.
    content = "IF DAYS-LATE > 5\n    COMPUTE FEE = BALANCE * 0.015\nEND-IF.\n"
    sha256 = hashlib.sha256(content.encode()).hexdigest()
    assert rows(
        conn, "SELECT size_bytes, sha256, line_count, language::text FROM source_files"
    ) == [(len(content), sha256, 3, "cobol")]
    assert rows(conn, "SELECT line_count, sha256 ~ '^[0-9a-f]{64}$' FROM generated_files") == [
        (3, True)
    ]
    [(case_name,)] = rows(conn, "SELECT name FROM test_cases")
    assert case_name.startswith("case-")
    # One row per version of the reviewed rule; version 2 carries the application's author
    # and reason, and the database's snapshot.
    assert rows(
        conn,
        "SELECT v.version, u.email, v.change_reason, v.snapshot->>'review_status'"
        "  FROM rule_versions AS v JOIN business_rules AS r ON r.id = v.rule_id"
        "  LEFT JOIN users AS u ON u.id = v.changed_by"
        " WHERE r.name = 'Late fee' ORDER BY v.version",
    ) == [(1, None, None, "pending"), (2, "Ana.Lima@Acme.test", "approved in review", "approved")]
    assert rows(conn, "SELECT count(*), count(DISTINCT (rule_id, version)) FROM rule_versions") == [
        (5, 5)
    ]
    # The audit row names its tenant and keeps its actor's email.
    assert rows(
        conn,
        "SELECT a.actor_email, a.tenant_id = o.tenant_id FROM audit_logs AS a"
        " JOIN organizations AS o ON o.id = a.organization_id WHERE a.action = 'rule.import'",
    ) == [("Ana.Lima@Acme.test", True)]
    # The exports' identifiers, derived from the names; a split of one pattern.
    assert rows(
        conn,
        "SELECT name, slug, target_service, traffic_percentage FROM routing_rules ORDER BY slug",
    ) == [
        ("Late fees API", "late-fees-api", "modern", 90),
        ("Late fees API (legacy)", "late-fees-api-legacy", "legacy", 10),
    ]
