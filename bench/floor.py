"""The floor of the listing cases: Python, psycopg, one connection, the very statements the
command sends (recorded by bench/plans.py), the last one's rows printed as TSV. Nothing else:
what `migrationpilot` costs on top of this is the CLI's own overhead.

    python bench/floor.py URL STATEMENTS.pickle
"""

import pickle
import sys

import psycopg

url, recorded = sys.argv[1], sys.argv[2]
with open(recorded, "rb") as handle:
    statements = pickle.load(handle)
with psycopg.connect(url) as conn:
    for query, params in statements:
        cursor = conn.execute(query, params)
    out = sys.stdout
    for row in cursor.fetchall():
        out.write("\t".join("" if value is None else str(value) for value in row) + "\n")
