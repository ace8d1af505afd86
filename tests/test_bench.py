"""The benchmark suite's own promises (bench/): the generator makes the rows and the shape
docs/benchmarks.md describes, and the runner has a case for every line of issue 7's table.
Timings are never asserted; `make bench` in CI checks that the whole suite runs."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest

from tests.conftest import rows


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return importlib.import_module("bench")


@pytest.fixture
def small(bench: ModuleType, database_url: str) -> str:
    psql, _ = bench.find_psql()
    bench.generate(psql, database_url, "small")
    return database_url


def test_the_generator_makes_the_documented_rows_at_small_scale(
    bench: ModuleType, small: str, conn: psycopg.Connection[Any]
) -> None:
    counted = rows(
        conn,
        "SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM projects),"
        " (SELECT count(*) FROM source_files), (SELECT count(*) FROM business_rules),"
        # the generated history (the generating statements are audited too, by the database)
        " (SELECT count(*) FROM audit_logs WHERE metadata ->> 'comment' = 'bench'),"
        # every rule was written through the versioning trigger
        " (SELECT count(*) FROM rule_versions WHERE version = 1)",
    )
    scale = bench.SCALES["small"]
    assert counted == [
        (
            scale["orgs"],
            scale["projects"],
            scale["files"],
            scale["rules"],
            scale["audit"],
            scale["rules"],
        )
    ]


def test_generated_rules_point_inside_a_file_of_their_own_project(
    small: str, conn: psycopg.Connection[Any]
) -> None:
    outside = rows(
        conn,
        """
        SELECT count(*) FROM business_rules r
        LEFT JOIN source_files f ON f.project_id = r.project_id AND f.path = r.source_file
        WHERE f.id IS NULL OR r.source_end_line > f.line_count
           OR f.organization_id <> r.organization_id
        """,
    )
    assert outside == [(0,)]
    # Reviewed rules name a reviewer of their own organization (the composite key holds it);
    # pending ones name none.
    assert rows(
        conn,
        "SELECT review_status = 'pending', bool_and(reviewed_by IS NULL)"
        " FROM business_rules GROUP BY 1 ORDER BY 1",
    ) == [(False, False), (True, True)]


def test_generated_data_is_skewed_as_documented(small: str, conn: psycopg.Connection[Any]) -> None:
    ((pending, confident, biggest_share),) = rows(
        conn,
        """
        SELECT avg((review_status = 'pending')::int), avg((confidence >= 0.9)::int),
               (SELECT max(n) FROM (SELECT count(*) AS n FROM business_rules
                                    GROUP BY project_id) AS p) / count(*)::numeric
        FROM business_rules
        """,
    )
    assert 0.5 < pending < 0.6
    assert 0.3 < confident < 0.45
    assert biggest_share > 2 / 20  # one project in twenty holds well over its even share


def test_the_runner_has_a_case_for_every_line_of_the_issue(
    bench: ModuleType, small: str, tmp_path: Path
) -> None:
    work = tmp_path
    psql, _ = bench.find_psql()
    target = bench.subjects(small)
    cases = [
        *bench.read_cases(small, work, target),
        *bench.write_cases(small, psql, work, target, "small"),
        *bench.migrate_cases(small, psql),
    ]
    assert {case.name for case in cases} >= {
        "start-up",
        "help",
        "pending list",
        "RLS cost",
        "dashboard",
        "rules export",
        "rules import",
        "files import",
        "bulk approve",
        "migrate (empty)",
        "migrate (nothing to do)",
    }
    # The import's data really is what the case says: one JSON line per rule.
    imported = (work / "rules.jsonl").read_text().splitlines()
    assert len(imported) == bench.WRITES["small"]["import_rules"]
