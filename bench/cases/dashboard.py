"""dashboard: `projects show` of the biggest project against psycopg sending its SQL."""

import pickle

from bench.data import Context
from bench.measure import BENCH, MP, PYTHON, Case, Command, case
from bench.plans import record
from migrationpilot_cli.queries import projects

NAME = "dashboard"


def build(ctx: Context) -> Case:
    project = str(ctx.target.project_id)
    board = record(ctx.url, lambda conn: projects.dashboard(conn, projects.get(conn, project)))
    statements = ctx.work / "dashboard.pickle"
    statements.write_bytes(pickle.dumps(board.statements))
    return case(
        NAME,
        Command([MP, "--database-url", ctx.url, "projects", "show", project, "--format", "tsv"]),
        Command([PYTHON, str(BENCH / "floor.py"), ctx.url, str(statements)]),
        f"migrationpilot projects show {project}",
        "bench/floor.py: the dashboard's SQL",
        "<= 1.25",
    )
