r"""rules export: every rule of the biggest project as CSV, streamed from the server, against
psql's `\copy (SELECT ...) TO STDOUT` of the same rows, columns and order."""

from bench.data import Context
from bench.measure import MP, Case, Command, case
from bench.server import sql_rows
from migrationpilot_cli.queries.rules import EXPORT_COLUMNS

NAME = "rules export"

_SELECT = """SELECT r.id, r.name, r.category, r.confidence, r.review_status,
reviewer.email AS reviewed_by, r.reviewed_at, r.review_comments, r.description, r.logic,
r.formula, r.inputs, r.outputs, r.source_file, r.source_start_line, r.source_end_line,
r.source_code, r.version, r.extracted_at FROM business_rules r
LEFT JOIN people reviewer ON reviewer.id = r.reviewed_by WHERE r.project_id = '{project}'
ORDER BY r.category, r.confidence DESC, r.id"""


def build(ctx: Context) -> Case:
    project = str(ctx.target.project_id)
    [(count,)] = sql_rows(
        ctx.url, "SELECT count(*) FROM business_rules WHERE project_id = %s", (project,)
    )
    select = " ".join(_SELECT.format(project=project).split())
    assert select.count(",") >= len(EXPORT_COLUMNS) - 1, "the baseline selects every column"
    copy = f"\\copy ({select}) TO STDOUT CSV HEADER"
    return case(
        NAME,
        Command(
            [MP, "--database-url", ctx.url, "rules", "export", "-p", project, "--format", "csv"]
        ),
        Command([ctx.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", copy, ctx.url]),
        f"migrationpilot rules export --format csv ({count:,} rules, streamed)",
        "psql \\copy (the same SELECT) TO STDOUT as CSV",
        ">= 0.5" if count >= 100_000 else "report (goal >= 0.5 at 100,000 rules)",
        rows=count,
    )
