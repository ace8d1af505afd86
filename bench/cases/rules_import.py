r"""rules import: JSON Lines of rules against psql's `\copy` into a bare table, and against the
database floor (psql inserting the rows we store into business_rules)."""

import csv
import hashlib
import json
import random
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from bench.data import WRITES, Context, copy_baseline, drop_project, fresh_project
from bench.measure import MP, Baseline, Case, Command, scaled_goal
from bench.server import sql_rows
from migrationpilot_cli import jsonrecords, rulefiles
from migrationpilot_cli.queries import rule_import

NAME = "rules import"

# The rows in confidence order, as the import writes them (queries/rule_import.py): the
# cheapest order for the indexes, so the floor stays a floor.
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
FROM staged s, projects p WHERE p.name = '{project}'
ORDER BY s.confidence DESC;
COMMIT;
"""


def build(ctx: Context) -> Case:
    url, psql, work, target = ctx.url, ctx.psql, ctx.work, ctx.target
    count = WRITES[ctx.scale]["import_rules"]
    stored = sql_rows(
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
        setup=lambda: fresh_project(url, target, name, target.project_id),
        cleanup=lambda: drop_project(url, name, "business_rules", "rule_versions"),
    )
    columns = (
        "name text, category text, confidence numeric, source_file text,"
        " source_start_line int, source_end_line int, description text, logic text,"
        " inputs jsonb, outputs jsonb"
    )
    baseline = copy_baseline(url, psql, "bench_bare_rules", columns, csv_file)
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
                NAME,
                baseline,
                "psql \\copy of the same rows as CSV into a bare table",
                scaled_goal(">= 0.15 and 100,000/s", count, 100_000, "rules"),
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
        explain=lambda: _final_insert_plan(url, name, jsonl, ours),
    )


# auto_explain, in this session only, reporting each plan to the client as a notice.
_EXPLAIN_SETTINGS = (
    "LOAD 'auto_explain'",
    "SET auto_explain.log_min_duration = 0",
    "SET auto_explain.log_analyze = on",
    "SET auto_explain.log_buffers = on",
    "SET auto_explain.log_triggers = on",
    "SET auto_explain.log_level = notice",
)


def _final_insert_plan(url: str, name: str, jsonl: Path, ours: Command) -> str:
    """The import's own final INSERT (queries.rule_import.merge, the code the command runs) on
    the rules of one run, explained with the time of every trigger, then rolled back."""
    notices: list[str] = []
    ours.setup()
    try:
        with psycopg.connect(url, row_factory=dict_row) as conn:
            conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
            for setting in _EXPLAIN_SETTINGS:
                conn.execute(setting)
            project = conn.execute(
                "SELECT id, organization_id, name FROM projects WHERE name = %s", (name,)
            ).fetchone()
            records = rulefiles.checked(jsonrecords.stream(str(jsonl)))
            rule_import.merge(conn, project, records)
            conn.rollback()
    finally:
        ours.cleanup()
    [plan] = [text for text in notices if "INSERT INTO business_rules" in text]
    return plan


# What the database itself costs for the rows we store: business_rules' constraints, indexes
