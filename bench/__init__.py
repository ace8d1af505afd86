"""The benchmark suite (`make bench`, `python -m bench CASE`): bench/run.py is the runner,
bench/cases/ holds one module per case, and these share the helpers: measure.py (timing),
server.py (the throwaway server, SQL and psql), data.py (the data set), plans.py (EXPLAIN of
the listings) and report.py (docs/benchmarks.md)."""

from bench.cases import migrate_cases, read_cases, write_cases
from bench.data import SCALES, WRITES, generate, subjects
from bench.server import find_psql

__all__ = [
    "SCALES",
    "WRITES",
    "find_psql",
    "generate",
    "migrate_cases",
    "read_cases",
    "subjects",
    "write_cases",
]
