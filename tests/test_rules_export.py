"""`rules export --format csv` is written by the server (COPY): byte for byte what our own
renderer (output.py) writes for the same rows, except where that renderer lost information;
streamed, in flat memory; as the acting user; and a lost connection is exit 3 with no file."""

from __future__ import annotations

import contextlib
import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from migrationpilot_cli.output import OutputFormat, render
from migrationpilot_cli.queries import rules
from tests.conftest import CONSOLE_SCRIPT, rows

ANA = ("--as", "ana@acme.test")

# Rules written by plain SQL, as any client may write them: every cell our csv treats apart.
_AWKWARD = """
INSERT INTO business_rules (organization_id, project_id, name, category, confidence,
    review_status, reviewed_by, reviewed_at, review_comments, source_file, source_start_line,
    source_end_line, source_code, inputs, outputs, logic, formula, description, extracted_at)
SELECT p.organization_id, p.id, v.name, v.category::rule_category, v.confidence,
       v.status::review_status, CASE WHEN v.status <> 'pending' THEN u.id END,
       v.reviewed_at::timestamptz, v.comments, v.file, 1, 2, v.code, v.inputs::jsonb,
       v.outputs::jsonb, v.logic, v.formula, v.description, v.extracted_at::timestamptz
FROM projects p, users u, (VALUES
    ('Quote "q", comma, and' || E'\\nnewline', 'calculation', 1.000, 'approved',
     '2026-01-02 03:04:05.000001+05:30', E'tab\\there, back\\\\slash', 'src/a b,c.cbl',
     E'  MOVE "A" TO B.\\r\\n  STOP RUN.',
     '["a, b", "c: d", {"k: ": "v, w", "n": 12345678901234567890}, "\\u001b[31m",
       "quote \\" back \\\\", true, null, 42, -7]', '[]', '', NULL,
     'Zins für Überziehung — 10 € ✓ 😀 ' || chr(27) || '[2J', '1999-12-31 23:59:59+00'),
    ('Plain', 'validation', 0.000, 'pending', NULL, NULL, 'src/p.cbl', '', '["x"]',
     '[["nested", {}], {"a": []}]', 'if x', 'y = x', '', '2026-06-30 12:00:00.5+00'),
    ('Sent back', 'constraint', 0.950, 'needs_clarification', '2026-03-04 05:06:07+00',
     '', 'src/p.cbl', 'x', '["a, b", "c"]', '[1, true, null, "x y", -2.5]', ',', '"',
     ' leading and trailing ',
     '0999-01-01 00:00:00+00')
) AS v (name, category, confidence, status, reviewed_at, comments, file, code, inputs,
        outputs, logic, formula, description, extracted_at)
WHERE p.name = 'Loans core' AND u.email = 'ana@acme.test'
"""


@pytest.fixture
def project(acme: Any, conn: psycopg.Connection[Any]) -> UUID:
    created = acme(
        *ANA, "projects", "create", "Loans core", "--source", "cobol", "--target", "java", "-q"
    )
    assert created.exit_code == 0, created.stderr
    return UUID(created.stdout.strip())


def rendered_by_python(database_url: str, project_id: UUID) -> str:
    """What output.py writes for the export's rows: the csv before the server wrote it."""
    written = io.StringIO()
    with (
        psycopg.connect(database_url, row_factory=dict_row) as conn,
        contextlib.redirect_stdout(written),
    ):
        render(rules.export(conn, project_id), rules.EXPORT_COLUMNS, fmt=OutputFormat.csv)
    return written.getvalue()


def test_the_server_writes_the_csv_our_renderer_writes(
    acme: Any, project: UUID, conn: psycopg.Connection[Any], database_url: str
) -> None:
    conn.execute(_AWKWARD)
    # Through the console script: the bytes on its stdout, as a pipe gets them.
    exported = subprocess.run(
        [str(CONSOLE_SCRIPT), "--database-url", database_url, *ANA, "rules", "export", "-p",
         "Loans core", "--format", "csv"], capture_output=True, check=True,
    )  # fmt: skip
    assert exported.stdout == rendered_by_python(database_url, project).encode()
    text = exported.stdout.decode()
    assert text.split("\n")[0] == ",".join(rules.EXPORT_COLUMNS)
    # A few cells spelt out, so that this test cannot pass with both sides wrong alike.
    first = next(csv.DictReader(io.StringIO(text, newline="")))
    assert first["name"] == 'Quote "q", comma, and\nnewline'
    assert first["reviewed_at"] == "2026-01-01T21:34:05.000001+00:00"
    assert first["extracted_at"] == "1999-12-31T23:59:59+00:00"
    assert first["inputs"] == (
        '["a, b","c: d",{"n":12345678901234567890,"k: ":"v, w"},"\\u001b[31m",'
        '"quote \\" back \\\\",true,null,42,-7]'
    )
    assert first["source_code"] == '  MOVE "A" TO B.\r\n  STOP RUN.'
    assert (first["logic"], first["formula"], first["confidence"]) == ("", "", "1.000")
    assert first["description"].endswith("😀 \x1b[2J")  # machine formats keep data exact


def test_where_the_server_is_exact_and_our_renderer_was_not(
    acme: Any, project: UUID, conn: psycopg.Connection[Any], database_url: str
) -> None:
    """Two cells differ, on purpose: a lone carriage return is quoted (RFC 4180; Python's
    writer left it bare, and a CSV reader then splits the row there), and a jsonb number
    keeps the digits it was stored with (Python read it as a float: 1.50 became 1.5,
    0.0000001 became 1e-07, and a longer one was rounded)."""
    conn.execute(
        "INSERT INTO business_rules (organization_id, project_id, name, category, confidence,"
        " source_file, source_start_line, source_end_line, source_code, inputs, logic,"
        " description)"
        " SELECT organization_id, id, 'CR', 'decision', 0.5, 'src/p.cbl', 1, 1, %s, %s, 'l',"
        " 'd' FROM projects WHERE name = 'Loans core'",
        ("MOVE A\rTO B", "[1.50, 0.0000001, 0.12345678901234567890123]"),
    )
    exported = acme(*ANA, "rules", "export", "-p", "Loans core", "--format", "csv").stdout
    by_python = rendered_by_python(database_url, project)
    assert '"MOVE A\rTO B"' in exported and ",MOVE A\rTO B," in by_python
    assert '"[1.50,0.0000001,0.12345678901234567890123]"' in exported
    assert '"[1.5,1e-07,0.12345678901234568]"' in by_python
    [record] = csv.DictReader(io.StringIO(exported, newline=""))
    assert record["source_code"] == "MOVE A\rTO B"


def test_the_csv_is_the_acting_users_and_goes_to_a_file_whole(
    acme: Any, project: UUID, conn: psycopg.Connection[Any], tmp_path: Path, database_url: str
) -> None:
    conn.execute(_AWKWARD)
    target = tmp_path / "rules.csv"
    written = acme(*ANA, "rules", "export", "-p", "Loans core", "--format", "csv",
                   "-o", str(target))  # fmt: skip
    assert (written.exit_code, written.stdout) == (0, "")
    assert target.read_bytes() == rendered_by_python(database_url, project).encode()
    invisible = acme("--as", "bob@globex.test", "rules", "export", "-p", "Loans core",
                     "--format", "csv", "-o", str(tmp_path / "bob.csv"))  # fmt: skip
    assert (invisible.exit_code, invisible.stdout) == (4, "")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rules.csv"]


def test_an_empty_project_exports_the_header_alone(acme: Any, project: UUID) -> None:
    exported = acme(*ANA, "rules", "export", "-p", "Loans core", "--format", "csv")
    assert (exported.exit_code, exported.stdout) == (0, ",".join(rules.EXPORT_COLUMNS) + "\n")


# The resident size of an export of 40,000 rules (each with 2.5 kB of source: 100 MB of CSV)
# is about 50 MB in either format: the rows stream through, none is kept.
STREAMED_EXPORT_MB = 100


@pytest.mark.parametrize("export_format", ["csv", "json"])
def test_an_export_streams_in_flat_memory(
    acme: Any, project: UUID, conn: psycopg.Connection[Any], database_url: str,
    export_format: str,
) -> None:  # fmt: skip
    count = 40_000
    conn.execute(
        "INSERT INTO business_rules (organization_id, project_id, name, category, confidence,"
        " source_file, source_start_line, source_end_line, source_code, logic, description)"
        " SELECT p.organization_id, p.id, 'rule ' || n, 'calculation', 0.9, 'src/p.cbl', n,"
        " n, repeat('COMPUTE X = Y. ', 170), 'l', 'd'"
        " FROM projects p, generate_series(1, %s) AS n WHERE p.name = 'Loans core'",
        (count,),
    )
    command = [str(CONSOLE_SCRIPT), "--database-url", database_url, *ANA, "rules", "export",
               "-p", "Loans core", "--format", export_format]  # fmt: skip
    # A parent of its own, so that its children's peak is this command's alone; it counts
    # the lines instead of keeping them.
    measured = (
        "import resource, subprocess, sys;"
        " child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE);"
        " lines = sum(1 for _ in child.stdout); code = child.wait();"
        " print(lines, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", measured, *command], capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr
    lines, peak_kb = map(int, completed.stdout.split())
    assert lines > count
    assert int(peak_kb) / 1024 < STREAMED_EXPORT_MB, f"peak {int(peak_kb) / 1024:.0f} MB"
    assert rows(conn, "SELECT count(*) FROM business_rules") == [(count,)]
