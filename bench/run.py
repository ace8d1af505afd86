"""The runner: `python -m bench [CASE ...] [--scale small|medium|large]`.

It starts an embedded PostgreSQL of its own in a temporary directory, migrates it, fills it
with bench/generate.sql at the chosen scale, then times every case (bench/cases/): each
command of ours against its baseline, one warm-up each and then RUNS rounds in which ours and
the baseline run back to back (these machines are noisy: interleaving exposes both to the same
noise). It reports the medians and their ratio, the server time and plan of every listing
(EXPLAIN ANALYZE, BUFFERS, of the statements the command sends), stops the server, removes
the directory, and writes bench/results/SCALE.json and docs/benchmarks.md (all scales run so
far, and their growth). Naming cases measures only those and writes no report.

No timing is asserted: the exit status is 1 only when a listing at SCALE=large reads
business_rules, source_files or audit_logs by a sequential scan.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

from bench import cases as registry
from bench.data import SCALES, WRITES, Context, facts, generate, migrate, subjects
from bench.measure import BENCH, ROOT
from bench.plans import explain_listings, organizations_by_size, sizes
from bench.report import machine, print_table, write_report
from bench.server import bench_server, find_psql

READ_RUNS = 11  # a read case takes a fraction of a second: more rounds steady its median


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "cases",
        nargs="*",
        metavar="CASE",
        help="Measure only the cases whose name contains CASE (e.g. 'pending list', import);"
        " for quick iterations: prints the table, writes no report.",
    )
    parser.add_argument("--only", action="append", default=[], metavar="CASE", help="As CASE.")
    parser.add_argument("--scale", choices=SCALES, default=os.environ.get("SCALE", "small"))
    parser.add_argument("--runs", type=int, default=None, help="Rounds per case.")
    options = parser.parse_args()
    only = [*options.cases, *options.only]
    modules = registry.chosen(only)
    if not modules:
        parser.error(f"no case is named like {only}: {[m.NAME for m in registry.ALL]}")
    scale = options.scale
    runs = options.runs or WRITES[scale]["runs"]
    psql, psql_version = find_psql()
    # Time the CLI as installed: pip compiles a wheel's bytecode when it installs it. Our
    # editable install under PYTHONDONTWRITEBYTECODE (set on these machines) would recompile
    # every module of ours in every run instead, about 20 ms that no user pays.
    compileall.compile_dir(ROOT / "migrationpilot_cli", quiet=1)
    print(f"bench: SCALE={scale}, {runs} runs per case, {psql_version} ({psql})")
    with bench_server() as url, tempfile.TemporaryDirectory(prefix="mp-bench-work-") as work_dir:
        migrate(url)
        seconds = generate(psql, url, scale)
        data = facts(url)
        print(f"bench: generated {data['rows']} in {seconds:.1f} s")
        target = subjects(url)
        built = registry.build(modules, Context(url, psql, Path(work_dir), target, scale))
        explains = {}
        for module, one in zip(modules, built, strict=True):
            started = time.perf_counter()
            one.measure(max(runs, READ_RUNS) if module in registry.READS else runs)
            if one.explain:
                explains[one.name] = one.explain()
            print(f"bench: {one.name}: {time.perf_counter() - started:.1f} s", flush=True)
        plans = explain_listings(url, target)
        table_sizes, by_organization = sizes(url), organizations_by_size(url)
        results = [row for one in built for row in one.results()]
        server = data["postgresql"]
    print_table(results, plans)
    for name, plan in explains.items():
        print(f"\n{name}, the plan of its main statement:\n{plan}")
    if only:
        return 0
    run = {
        "scale": scale,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(psql, psql_version, server),
        "facts": data,
        "generate_seconds": seconds,
        "results": results,
        "plans": plans,
        "explains": explains,
        "sizes": table_sizes,
        "organizations": by_organization,
    }
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"{scale}.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    write_report(results_dir, ROOT / "docs" / "benchmarks.md")
    print("\nbench: wrote docs/benchmarks.md")
    forbidden = [p for p in plans if p["forbidden"]]
    if forbidden and scale == "large":
        print(
            "bench: sequential scans at SCALE=large: "
            + "; ".join(f"{p['listing']}: {', '.join(p['forbidden'])}" for p in forbidden)
        )
        return 1
    return 0
