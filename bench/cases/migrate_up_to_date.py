"""migrate (nothing to do): `db migrate` of the migrated bench database against importing
psycopg alone."""

from bench.data import Context
from bench.measure import MP, PYTHON, Case, Command, case

NAME = "migrate (nothing to do)"


def build(ctx: Context) -> Case:
    return case(
        NAME,
        Command([MP, "--database-url", ctx.url, "db", "migrate"]),
        Command([PYTHON, "-c", "import psycopg"]),
        "migrationpilot db migrate, up to date",
        'python -c "import psycopg"',
        "report",
    )
