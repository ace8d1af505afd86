"""The data set: its scales, the generator, what it made, and the projects the write cases
make and drop around every run."""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.measure import BENCH, Command
from bench.server import psql_copy, sql_rows
from migrationpilot_cli.db import migrations

# Rows of the generated data set, and the size of the write cases (`small` is the CI smoke
# run, which must stay short: it writes a twentieth).
SCALES = {
    "small": dict(orgs=10, projects=20, files=1_000, rules=10_000, audit=10_000),
    "medium": dict(orgs=30, projects=200, files=20_000, rules=200_000, audit=200_000),
    "large": dict(orgs=100, projects=1_000, files=100_000, rules=1_000_000, audit=1_000_000),
}
WRITES = {
    "small": dict(import_rules=5_000, import_files=10_000, approve=500, runs=5),
    "medium": dict(import_rules=100_000, import_files=10_000, approve=10_000, runs=5),
    "large": dict(import_rules=100_000, import_files=10_000, approve=10_000, runs=3),
}
REVIEWER = "reviewer@org-1.bench"  # the reviewer of the biggest organization


def migrate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        files_ = migrations.discover(migrations.packaged_directory())
        migrations.migrate(conn, files_, target=None, lock_timeout="5s", on_applied=lambda *_: None)


def generate(psql: str, url: str, scale: str) -> float:
    variables = [f"--variable={name}={value}" for name, value in SCALES[scale].items()]
    started = time.perf_counter()
    subprocess.run(
        [psql, "-X", "-q", *variables, "-f", str(BENCH / "generate.sql"), url], check=True
    )
    with psycopg.connect(url, autocommit=True) as conn:
        # As after a day of autovacuum: statistics, and the visibility map for index-only scans.
        conn.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - started


def facts(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        counts = conn.execute(
            """
            SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM projects),
                   (SELECT count(*) FROM source_files), (SELECT count(*) FROM business_rules),
                   (SELECT count(*) FROM rule_versions), (SELECT count(*) FROM audit_logs),
                   current_setting('server_version'),
                   pg_size_pretty(pg_database_size(current_database()))
            """
        ).fetchone()
        assert counts is not None
    names = (
        "organizations",
        "projects",
        "source_files",
        "business_rules",
        "rule_versions",
        "audit_logs",
    )
    return {
        "rows": dict(zip(names, counts[:6], strict=True)),
        "postgresql": counts[6],
        "database_size": counts[7],
    }


@dataclass
class Subjects:
    """What the cases act on: the biggest project, a user of its organization."""

    project_id: uuid.UUID
    organization_id: uuid.UUID
    source_language: str


def subjects(url: str) -> Subjects:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """
            SELECT p.id, p.organization_id, p.source_language::text
            FROM projects p JOIN users u ON u.organization_id = p.organization_id
            WHERE u.email = %s
            ORDER BY (SELECT count(*) FROM business_rules r WHERE r.project_id = p.id) DESC
            LIMIT 1
            """,
            (REVIEWER,),
        ).fetchone()
    assert row is not None, "the generator makes reviewer@org-1.bench"
    return Subjects(*row)


def copy_baseline(url: str, psql: str, table: str, columns: str, data: Path) -> Command:
    """`psql \\copy` of a CSV file into a bare table (no keys, no indexes, no triggers)."""
    sql_rows(url, f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({columns})")
    return Command(
        psql_copy(psql, url, table, data), cleanup=lambda: sql_rows(url, f"TRUNCATE {table}")
    )


def drop_project(url: str, name: str, *written: str) -> None:
    """Delete a write case's project, then vacuum the tables it wrote: the bare baseline
    starts every run from a truncated table, so ours must not start among the dead rows and
    index entries of the run before. A deleted rule keeps its versions (V0014); a run's
    throwaway rules must not leave theirs for the next run to write beside."""
    (rules,) = sql_rows(
        url,
        "SELECT coalesce(array_agg(r.id), '{}') FROM business_rules r"
        " JOIN projects p ON p.id = r.project_id WHERE p.name = %s",
        (name,),
    )[0]
    sql_rows(url, "DELETE FROM projects WHERE name = %s", (name,))
    sql_rows(url, "DELETE FROM rule_versions WHERE rule_id = ANY(%s)", (rules,))
    sql_rows(url, f"VACUUM {', '.join(written)}")


def fresh_project(
    url: str,
    target: Subjects,
    name: str,
    with_files_of: uuid.UUID | None,
    project_id: uuid.UUID | None = None,
) -> None:
    """A new project of the target's organization (with ``project_id`` when given), with a
    copy of another project's files."""
    sql_rows(url, "DELETE FROM projects WHERE name = %s", (name,))
    (project_id,) = sql_rows(
        url,
        "INSERT INTO projects (id, name, organization_id, source_language, target_language)"
        " VALUES (coalesce(%s::uuid, gen_random_uuid()), %s, %s, %s, 'java') RETURNING id",
        (project_id, name, target.organization_id, target.source_language),
    )[0]
    if with_files_of is not None:
        sql_rows(
            url,
            """
            INSERT INTO source_files (organization_id, project_id, path, content, language,
                                      encoding, size_bytes, sha256, line_count, code_lines,
                                      comment_lines, blank_lines)
            SELECT organization_id, %s, path, content, language, encoding, size_bytes, sha256,
                   line_count, code_lines, comment_lines, blank_lines
            FROM source_files WHERE project_id = %s
            """,
            (project_id, with_files_of),
        )


@dataclass
class Context:
    """What every case is built from: the server, psql, a scratch directory, the subjects and
    the scale."""

    url: str
    psql: str
    work: Path
    target: Subjects
    scale: str
