"""The cases, in the order of the report: one module each, with its NAME (the first row of
the table it makes) and `build(ctx) -> Case`. A new case is a new module listed here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from bench.cases import (
    audit_cost,
    bulk_approve,
    dashboard,
    files_import,
    help_text,
    migrate_empty,
    migrate_up_to_date,
    pending_list,
    review_queue,
    rls_cost,
    rules_export,
    rules_import,
    startup,
    sticky_routing,
)
from bench.data import Context, Subjects
from bench.measure import Case

# A read case takes a fraction of a second: it runs at least READ_RUNS rounds.
READS: tuple[ModuleType, ...] = (startup, help_text, pending_list, rls_cost, dashboard)
# A whole project read out: seconds, as a write takes, so as many rounds as a write.
EXPORTS: tuple[ModuleType, ...] = (rules_export,)
WRITES: tuple[ModuleType, ...] = (
    rules_import,
    audit_cost,
    files_import,
    bulk_approve,
    review_queue,
)
MIGRATES: tuple[ModuleType, ...] = (migrate_empty, migrate_up_to_date)
# Cases that need programs besides PostgreSQL: each module's `missing()` says why it cannot
# run (None: it can); such a case is left out, and the runner says so.
PROXIES: tuple[ModuleType, ...] = (sticky_routing,)
ALL = READS + EXPORTS + WRITES + MIGRATES + PROXIES


def chosen(only: Sequence[str]) -> tuple[ModuleType, ...]:
    """The cases whose name contains any of ``only`` (all of them when it is empty), less
    those that cannot run here."""
    picked = []
    for module in ALL:
        if only and not any(part in module.NAME for part in only):
            continue
        why = module.missing() if hasattr(module, "missing") else None
        if why:
            print(f"bench: {module.NAME} left out: {why}")
        else:
            picked.append(module)
    return tuple(picked)


def build(modules: Sequence[ModuleType], ctx: Context) -> list[Case]:
    return [module.build(ctx) for module in modules]


# The three groups on their own (tests/test_bench.py builds them at SCALE=small).
def read_cases(url: str, work: Path, target: Subjects) -> list[Case]:
    from bench.server import find_psql

    return build(READS + EXPORTS, Context(url, find_psql()[0], work, target, "small"))


def write_cases(url: str, psql: str, work: Path, target: Subjects, scale: str) -> list[Case]:
    return build(WRITES, Context(url, psql, work, target, scale))


def migrate_cases(url: str, psql: str) -> list[Case]:
    from bench.data import subjects  # the migrate cases act on no subject; Context wants one

    return build(MIGRATES, Context(url, psql, Path("."), subjects(url), "small"))
