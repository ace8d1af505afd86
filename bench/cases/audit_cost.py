"""Audit cost: what the database's audit triggers (V0012) add to `rules import`, measured
against the same command with those triggers disabled (ALTER TABLE ... DISABLE TRIGGER, as
the owner, for the baseline's runs only). The issue's bound: at most 20% of import time."""

from bench.cases import rules_import
from bench.data import Context
from bench.measure import Case, Command, case
from bench.server import sql_rows

NAME = "audit cost"

_TRIGGERS = ("business_rules_audit_insert", "business_rules_audit_update")


def _switch(url: str, state: str) -> None:
    for trigger in _TRIGGERS:  # names from the list above, not input
        sql_rows(url, f"ALTER TABLE business_rules {state} TRIGGER {trigger}")


def _unaudited(url: str, command: Command) -> Command:
    """``command`` run with the audit triggers of business_rules disabled."""

    def setup() -> None:
        _switch(url, "DISABLE")
        command.setup()

    def cleanup() -> None:
        command.cleanup()
        _switch(url, "ENABLE")

    return Command(command.argv, stdin=command.stdin, setup=setup, cleanup=cleanup)


def build(ctx: Context) -> Case:
    imported = rules_import.build(ctx)
    return case(
        NAME,
        imported.ours,
        _unaudited(ctx.url, imported.ours),
        f"{imported.ours_label}, audited by the database",
        "the same import with the audit triggers of business_rules disabled",
        "<= 1.2",
    )
