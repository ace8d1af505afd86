"""The listings' plans (EXPLAIN ANALYZE of the statements a query function sends), and where
one node's limits are (docs/scaling.md): sizes, and the queue by organization size."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.data import REVIEWER, Subjects
from migrationpilot_cli.db.connect import act_as
from migrationpilot_cli.queries import files, projects, rules

SEQ_SCAN_FORBIDDEN = {"business_rules", "source_files", "audit_logs"}
NINE = Decimal("0.9")


def pending_queue(conn: Any) -> Any:
    """The reviewers' queue: `rules list --pending --min-confidence 0.9 --limit 50`."""
    return rules.list_rules(conn, status="pending", min_confidence=NINE, limit=50)


# Recording the statements a query function sends (for the floor script and EXPLAIN)
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


# The listings' plans
def listings(target: Subjects) -> list[tuple[str, Callable[[Any], Any], str | None]]:
    project = target.project_id
    return [
        (
            "rules list --pending --min-confidence 0.9 --limit 50",
            pending_queue,
            None,
        ),
        (
            "the same --as a reviewer (RLS)",
            pending_queue,
            REVIEWER,
        ),
        (
            "rules list -p P --pending --min-confidence 0.9 --limit 50",
            lambda c: rules.list_rules(
                c, project_id=project, status="pending", min_confidence=NINE, limit=50
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


# Where one node's limits are (docs/scaling.md): sizes, and the queue by organization size
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
    results = []
    for label, (_, rule_count, email) in picks.items():
        queue = record(
            url,
            pending_queue,
            email,
        )
        results.append({"organization": label, "rules": rule_count, **explain(url, queue, email)})
    return results
