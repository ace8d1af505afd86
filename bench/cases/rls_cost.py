"""RLS cost: the pending list acting as a reviewer (`--as`) against the same as operator."""

from bench.cases.pending_list import listing
from bench.data import REVIEWER, Context
from bench.measure import MP, Case, Command, case

NAME = "RLS cost"


def build(ctx: Context) -> Case:
    return case(
        NAME,
        Command([MP, "--database-url", ctx.url, "--as", REVIEWER, *listing(ctx.url)[3:]]),
        Command(listing(ctx.url)),
        "the pending list --as " + REVIEWER,
        "the same as operator",
        "<= 1.2",
    )
