"""migrate (empty): `db migrate` of a new empty database against psql running every migration
file. Each run gets a database of its own, made and dropped untimed."""

from itertools import count

from bench.data import Context
from bench.measure import MP, Case, Command, case
from bench.server import create_database, drop_database
from migrationpilot_cli.db import migrations

NAME = "migrate (empty)"


def build(ctx: Context) -> Case:
    names = count()
    empty: dict[str, str] = {}

    def fresh() -> None:
        empty["name"] = f"bench_empty_{next(names)}"
        empty["url"] = create_database(ctx.url, empty["name"])

    def drop() -> None:
        drop_database(ctx.url, empty["name"])

    scripts = [
        arg
        for path in sorted(migrations.packaged_directory().glob("V*.sql"))
        for arg in ("-f", str(path))
    ]
    ours = Command(
        lambda: [MP, "--database-url", empty["url"], "db", "migrate"], setup=fresh, cleanup=drop
    )
    baseline = Command(
        lambda: [ctx.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", *scripts, empty["url"]],
        setup=fresh,
        cleanup=drop,
    )
    return case(
        NAME,
        ours,
        baseline,
        "migrationpilot db migrate, from empty",
        "psql -f each migration file",
        "report",
    )
