"""Test cases: inputs and the expected result that check a rule's migrated implementation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.queries import copy_rows, one

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

COLUMNS = ("id", "rule_id", "rule", "name", "inputs", "expected", "updated_at")


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """One validated import record; ``inputs`` and ``expected`` are JSON text."""

    location: str
    rule_id: UUID
    name: str
    description: str | None
    inputs: str
    expected: str


_STAGE = """
CREATE TEMPORARY TABLE staged_test_cases (
    ordinal integer PRIMARY KEY, location text NOT NULL, rule_id uuid NOT NULL,
    name text NOT NULL, description text, inputs jsonb NOT NULL, expected jsonb NOT NULL
) ON COMMIT DROP
"""
_COPY = """
COPY staged_test_cases (ordinal, location, rule_id, name, description, inputs, expected)
FROM STDIN
"""
# The first case (in input order) that repeats an earlier one's rule and name, with that one.
_REPEATED = """
SELECT location, rule_id, name, earlier
FROM (SELECT ordinal, location, rule_id, name,
             first_value(location) OVER same AS earlier, row_number() OVER same AS nth
      FROM staged_test_cases
      WINDOW same AS (PARTITION BY rule_id, name ORDER BY ordinal)) AS numbered
WHERE nth > 1
ORDER BY ordinal
LIMIT 1
"""
# Under row-level security a rule of another organization is simply not there.
_FIRST_FOREIGN_RULE = """
SELECT s.location, s.rule_id FROM staged_test_cases s
WHERE NOT EXISTS (SELECT 1 FROM business_rules r
                  WHERE r.id = s.rule_id AND r.project_id = %(project)s)
ORDER BY s.ordinal
LIMIT 1
"""
_UPDATE_CHANGED = """
UPDATE test_cases t
SET description = s.description, inputs = s.inputs, expected = s.expected
FROM staged_test_cases s
WHERE t.rule_id = s.rule_id AND t.name = s.name
  AND (t.description, t.inputs, t.expected) IS DISTINCT FROM (s.description, s.inputs, s.expected)
RETURNING t.id
"""
_INSERT_NEW = """
INSERT INTO test_cases (organization_id, project_id, rule_id, name, description, inputs,
                        expected)
SELECT %(organization)s, %(project)s, s.rule_id, s.name, s.description, s.inputs, s.expected
FROM staged_test_cases s
WHERE NOT EXISTS (SELECT 1 FROM test_cases t WHERE t.rule_id = s.rule_id AND t.name = s.name)
ORDER BY s.ordinal
RETURNING id
"""

_SELECT = """
SELECT t.id, t.project_id, p.name AS project, t.rule_id, r.name AS rule, t.name,
       t.description, t.inputs, t.expected, t.created_at, t.updated_at
FROM test_cases t
JOIN business_rules r ON r.id = t.rule_id
JOIN projects p ON p.id = t.project_id
"""


def merge(conn: Connection, project: dict[str, Any], cases: Iterable[CaseRecord]) -> dict[str, int]:
    """Upsert ``cases`` on (rule, name): COPY into a staging table as they stream in, refuse
    an empty input, a case given twice, or a rule that is not the project's (naming the first
    such record), then one statement each for changed and new cases. Returns the counts:
    inserted, updated, unchanged."""
    conn.execute(_STAGE)
    rows = (
        (ordinal, c.location, c.rule_id, c.name, c.description, c.inputs, c.expected)
        for ordinal, c in enumerate(cases)
    )
    copy_rows(conn, _COPY, rows)
    counted = conn.execute("SELECT count(*) AS n FROM staged_test_cases").fetchone()
    staged = int(counted["n"]) if counted else 0
    if not staged:
        raise BadInput("no test cases in the input")
    repeated = conn.execute(_REPEATED).fetchone()
    if repeated is not None:
        raise BadInput(
            f"{repeated['location']}: rule_id {repeated['rule_id']} already has a case named"
            f" {repeated['name']!r} ({repeated['earlier']})"
        )
    ids = {"project": project["id"], "organization": project["organization_id"]}
    foreign = conn.execute(_FIRST_FOREIGN_RULE, ids).fetchone()
    if foreign is not None:
        raise BadInput(
            f"{foreign['location']}: rule_id {foreign['rule_id']} is not a rule of project"
            f" {project['name']!r}; see `migrationpilot rules list --project ...`"
        )
    updated = len(conn.execute(_UPDATE_CHANGED, ids).fetchall())
    inserted = len(conn.execute(_INSERT_NEW, ids).fetchall())
    return {"inserted": inserted, "updated": updated, "unchanged": staged - inserted - updated}


def list_visible(
    conn: Connection, *, project_id: UUID | None, rule_id: UUID | None
) -> list[dict[str, Any]]:
    """Every test case the caller can see, optionally of one project and of one rule."""
    return conn.execute(
        _SELECT
        + """
        WHERE (%(project)s::uuid IS NULL OR t.project_id = %(project)s)
          AND (%(rule)s::uuid IS NULL OR t.rule_id = %(rule)s)
        ORDER BY t.rule_id, t.name, t.id
        """,
        {"project": project_id, "rule": rule_id},
    ).fetchall()


def get(conn: Connection, case_id: UUID) -> dict[str, Any]:
    return one(
        conn,
        _SELECT + " WHERE t.id = %s",
        (case_id,),
        missing=f"no test case {case_id}; see `migrationpilot tests list`",
    )
