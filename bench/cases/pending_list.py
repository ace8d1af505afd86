"""pending list: the reviewers' queue against psycopg sending the same SQL (bench/floor.py)."""

import pickle

from bench.data import Context
from bench.measure import BENCH, MP, PYTHON, Case, Command, case
from bench.plans import pending_queue, record

NAME = "pending list"
PENDING = ["rules", "list", "--pending", "--min-confidence", "0.9", "--limit", "50"]


def listing(url: str) -> list[str]:
    """The argv of the pending list, as the operator, in TSV."""
    return [MP, "--database-url", url, *PENDING, "--format", "tsv"]


def build(ctx: Context) -> Case:
    statements = ctx.work / "queue.pickle"
    statements.write_bytes(pickle.dumps(record(ctx.url, pending_queue).statements))
    return case(
        NAME,
        Command(listing(ctx.url)),
        Command([PYTHON, str(BENCH / "floor.py"), ctx.url, str(statements)]),
        " ".join(["migrationpilot", *PENDING, "--format", "tsv"]),
        "bench/floor.py: psycopg, the same SQL, TSV",
        "<= 1.25",
    )
