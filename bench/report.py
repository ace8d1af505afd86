"""The report: the console table, the machine, and docs/benchmarks.md from every scale run."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from bench.data import SCALES


def machine(psql: str, psql_version: str, server: str) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = models[0] if models else cpu
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "postgresql": server,
        "psql": f"{psql_version} ({psql})",
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = ["| case | ours | baseline | ratio | goal |", "|---|---:|---:|---:|---|"]
    for r in results:
        ours, base = seconds(r["ours"]), seconds(r["baseline"])
        if r["rows"]:
            ours += f" ({r['rows'] / r['ours']:,.0f}/s)"
            base += f" ({r['rows'] / r['baseline']:,.0f}/s)"
        lines.append(f"| {r['case']} | {ours} | {base} | {r['ratio']:.2f} | {r['goal']} |")
    return lines


def print_table(results: list[dict[str, Any]], plans: list[dict[str, Any]]) -> None:
    width = max(len(r["case"]) for r in results)
    print(f"\n{'case':<{width}}  {'ours':>9}  {'baseline':>9}  {'ratio':>6}  goal")
    for r in results:
        print(
            f"{r['case']:<{width}}  {seconds(r['ours']):>9}  {seconds(r['baseline']):>9}"
            f"  {r['ratio']:>6.2f}  {r['goal']}"
        )
    print("\nlisting server times (EXPLAIN ANALYZE):")
    for p in plans:
        flag = "  SEQ SCAN: " + ", ".join(p["forbidden"]) if p["forbidden"] else ""
        print(f"  {p['server_ms']:8.2f} ms  {p['listing']}{flag}")


READING = """
How to read it:

* **start-up**: `--version` is answered before Typer or any command module is imported.
* **help**, **pending list**, **dashboard**: the server time of a listing is a millisecond or
  a few (the plans below); the rest is the process. Over the psycopg floor, every command
  pays for importing Typer and for Typer reading the one command's signature into Click
  parameters (the others are not built); our own modules are imported only for the command
  that runs (`python -X importtime`), and those a listing imports compile no regular
  expression and load no hashlib until a command uses one. Typer stays below 0.29, which
  converts every option through pydantic: importing it cost ~160 ms per command. `--help`
  renders every option's help as Markdown, so it grows with the command's options against a
  two-option minimal app. The entry point raises the cyclic GC's threshold to 50,000 and
  freezes what the imports made (`gc.freeze()`), once they are done and again at exit;
  otherwise the collector walks the graph of Typer, Click, Rich and psycopg objects every
  700 allocations and once more at exit: about a tenth of a short command's instructions.
  In instructions (callgrind): `rules list --help` 693 M against the minimal app's 577 M,
  the pending list 698 M against the floor's 666 M; of those, the interpreter's own start is
  39 M, and importing Typer and psycopg alone is 640 M. The bench compiles our bytecode
  first, as installing a wheel does.
* **RLS cost**: `--as` adds the user lookup and `SET LOCAL ROLE`; the queue then reads the
  organization's pending index in order (V0010), like the operator's reads the global one.
* **rules export**: a project of 1,000,000 rules at SCALE=large (100,000 at medium), in a
  database of the case's own: the biggest generated project holds about 5,000 rules, which
  psql exports in less time than our process takes to start. The server writes the CSV
  (`COPY (SELECT ...) TO STDOUT`) with each cell computed as output.py renders it (ISO-8601
  UTC timestamps, compact JSON, empty text unquoted), and the bytes go to stdout or the `-o`
  file as they come. Over psql's `\\copy` of the plain columns, ours pays the process
  start-up, those cells (about 2 µs a rule on the server) and passing each line through
  Python, which runs beside the server.
* **rules import**: the bare `\\copy` writes rows into a table without keys, indexes or
  triggers, a few microseconds a row. A rule costs the database far more, whoever writes it:
  seven index entries in `business_rules` (eight before V0017), its foreign-key checks, and
  the versioning trigger's JSON snapshot into `rule_versions` (three index entries and a
  foreign-key check of its own). The *database floor* row is psql inserting the rows we
  store into `business_rules` (with the source lines each rule cites, and their hash): what
  those invariants cost without any of our code. Ours is the floor plus a second or two of
  staging (the streamed COPY, cutting the source lines, matching): the plan below, the
  import's own final INSERT, is most of its time. Measured as the backend's CPU time for
  100,000 rules into 1,000,000 (SCALE=large data, after V0017, the rows in confidence order):
  the rows' heap 0.6 s; the versioning trigger's JSON snapshots and their heap 1.3 s; the
  seven indexes of `business_rules` 1.8 s; the versions' three indexes and foreign key 1.7 s;
  the project's foreign key and the statement triggers 1.0 s. About 64 microseconds a rule,
  so about 16,000 rules a second per CPU before a byte of WAL is written (75 microseconds in
  the file's order: four indexes sort by confidence, and the import inserts in that order
  so that their entries go in one sweep). V0018 made the sha256 CHECK on each rule's hash
  10 microseconds cheaper. The issue's 100,000 rules a second (10 microseconds a rule), or
  0.15 of `\\copy` (about 75,000 a second here), is less than the rows and their versions
  alone cost with no index, key or trigger (1.9 s per 100,000): fewer guarantees, not
  faster code. What was measured and not kept: time-ordered rule ids (uuidv7) made the
  INSERT 10 to 25% cheaper in CPU (noisy runs), but the first 8 hex digits of such an id are
  its minute, the same for every rule of an import, and people name rules by them; so only
  the versions, whose ids nobody types, got them (V0017). A faster JSON parser (orjson)
  parses 100,000 records in 0.20 s against the standard library's 0.43 s: 1% of the import,
  not worth a dependency. Dropping `business_rules_project_id_confidence_idx` (its listing
  served by the wider status index) saves 0.3 s per 100,000: not worth rewriting that query.
  The embedded server is built without OpenSSL, so its `gen_random_uuid()` opens
  /dev/urandom for every uuid (3.3 microseconds, 0.66 s per 100,000 rules and their
  versions), floor and ours alike; a server built with OpenSSL does not pay it.
* **files import**: every scale imports the same 10,000 files (1M lines) into a new project.
  Ours lists the tree, reads, decodes, hashes and counts code, comment and blank lines of
  every file in Python, streaming each into a binary COPY straight into `source_files` while
  the next is read (a re-import, or a user acting with `--as`, stages the rows and merges
  them). The *database floor* row is psql's `\\copy` of the finished rows into
  `source_files`: what the table's invariants cost with none of our code. The server is the
  slower side. Where its CPU goes (perf on the backend, the binary COPY of ours, two runs at
  SCALE=small): pglz compressing the text 34%, which the bare `\\copy` pays too (60% of its
  time); the three index entries of a file 16-18%; the statement triggers (tenant line
  limit, audit, project access) reading every row back from the transition table, and the
  rows' capture into it, 15-18% (our transaction keeps it in memory, work_mem, where psql's
  spills the 60 MB to a temporary file); the regular expressions of two CHECKs (the sha256's
  format, a path without `..`) about 10%, before V0018 made the sha256's a twentieth of
  that; the foreign key's check of each row 5-6%; each row's uuid 5-6%. The same rows into a
  table with only source_files' columns and defaults cost the backend (under perf) 0.36-0.38
  s of CPU, into source_files 0.75-0.9 s: the invariants double the server's work, and the
  floor pays all of them and parses the CSV besides, so the floor itself runs at 0.5 to 0.65
  of the bare `\\copy`. Without perf, the backend of ours takes 0.62-0.65 s of CPU and the
  bare `\\copy`'s 0.42-0.47 s, so even a client that cost nothing would stay near 0.7. Ours
  adds its start-up (Typer and psycopg, as for every command) before the first row, and its
  Python work (reading, hashing, counting 1M lines: 0.7 s of CPU for the whole process) runs
  beside the server's on the machine's other CPU. So 0.5 is within reach only while nothing
  else wants either CPU: ours measured 0.32 to 0.50 in our runs here, the higher the quieter
  the machine.
* **audit cost**: the same `rules import`, with and without the database's audit triggers on
  `business_rules` (V0012; disabled by the owner for the baseline's runs only). An import is
  one INSERT statement, so its audit is one row naming the ids (a row per 100,000); the goal
  is the issue's: the audit costs at most 20% of the import.
* **bulk approve**: the same UPDATE through psql; the triggers write the versions and the
  audit row of each decision (old and new values, V0012) for both, and they are most of
  either run (EXPLAIN ANALYZE at 10,000 ids: audit 1.4 s, versions 0.6 s, the rows and
  their index entries 0.65 s). psql's whole run is 3 ms of its own CPU; the rest of its
  time is the server's. Ours also starts Python, reads the ids from stdin (a pipe of whole
  uuids is checked in one pass: 4 ms for 10,000), locks the batch in id order in one
  statement that also asks both roles (organization and project), sends the ids once as a
  binary `uuid[]`, and prints a row per rule. That is about 0.25 s of CPU at 10,000 ids
  (callgrind: 686 M instructions for one id, start-up and connection, plus about 80 M per
  1,000 ids) and about 0.1 s of the server's for the lock (0.09 to 0.18 s in EXPLAIN
  ANALYZE), some 0.45 s over psql's run here. So 1.1 of psql (1.1 to 2.1 s at 10,000 ids on
  this machine, as loaded) would leave 0.11 to 0.21 s for all of it, when importing Typer
  and psycopg takes 0.15 to 0.18 s of CPU alone: out of reach while every batch is locked
  before it is changed and reported row by row, and the ratio rises as the triggers get
  faster.
* **review queue**: the reviewer's workbench (Textual, headless) opening the queue, making
  ten decisions and quitting, against the `rules list` a reviewer reads today: not the same
  work, so the ratio is only reported. The goals are the workbench's own: the first screen
  within a second, a decision within 50 ms of database time (`python -m
  bench.cases.review_queue URL EMAIL PROJECT` prints both).
* **migrate (empty)**, **migrate (nothing to do)**: psql runs the files and nothing else;
  ours also starts Python (Typer and psycopg, as every command), takes the migration lock,
  checks each applied file's checksum and records each file in its own transaction. Both
  are a few hundred milliseconds, so the ratio is only reported.
* **sticky routing**: requests per second through nginx (`routing export -o DIR` as
  exported, one worker) with `--sticky-key cookie:mp_user` against the same rules exported
  without it (`split_clients`, random per request): ApacheBench, keep-alive, 16 clients, to a
  path whose route splits, both proxying to one small nginx upstream on the same machine.
  Ratio: the sticky export's throughput as a fraction of the random one's. The sticky export
  is the default `--nginx-script lua`: `set_by_lua_block` runs migrationpilot.lua in the
  worker's one LuaJIT VM, whose murmur3 over "<group>:<key>" is compiled; a request costs
  nginx about 49,000 CPU instructions (callgrind) against about 42,600 for the random
  export, most of the difference in calling into Lua and reading its input through the FFI,
  not in the hash. `--nginx-script njs` costs about 79,000: Debian bookworm's njs 0.7 clones
  its VM for each request and interprets the hash; its ratio, measured the same way, was
  0.74 in one full run and a median 0.87 over ten runs on a busier machine (Lua's: 0.94 over
  24, 0.99 against njs's 0.85 in six runs alternating the two). The rest of a request is the
  kernel's, the same for both, so the ratio is closer to 1 than the instructions are; on
  these shared 2 CPUs ab and the upstream compete with nginx for them, and one run's ratio
  moves by 0.1 or more either way: read the median of several.
"""


def _cell(rows: list[dict[str, Any]], key: str, name: str, field: str) -> str:
    """A growth-table cell: the row named ``name`` at one scale, "-" when it was not run."""
    for row in rows:
        if row[key] == name:
            return f"{row[field]:.2f} ms" if field == "server_ms" else seconds(row[field])
    return "-"


def _before_and_after(before_file: Path, scale: str, after: dict[str, Any]) -> list[str]:
    """The ratios of a run kept from before a change (``SCALE-before.json``, its own file in
    bench/results/) beside today's, case by case."""
    if not before_file.exists():
        return []
    before = json.loads(before_file.read_text())
    ratios = {r["case"]: f"{r['ratio']:.2f}" for r in before["results"]}
    lines = [
        f"## SCALE={scale}: before and after",
        "",
        f"Ratios of the run of {before['date']} ({before_file.name}) beside the latest run"
        " (below); the same cases on the same machine.",
        "",
        "| case | before | after | goal |",
        "|---|---:|---:|---|",
    ]
    for r in after["results"]:
        lines.append(
            f"| {r['case']} | {ratios.get(r['case'], '-')} | {r['ratio']:.2f} | {r['goal']} |"
        )
    return [*lines, ""]


def write_report(results_dir: Path, document: Path) -> None:
    runs = {}
    for scale in SCALES:
        path = results_dir / f"{scale}.json"
        if path.exists():
            runs[scale] = json.loads(path.read_text())
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`SCALE=small`, the default and the CI smoke run) and",
        "`make bench SCALE=medium|large`; see bench/run.py (`python -m bench CASE` runs one case,",
        "bench/cases/ has one module each). Each case runs once to warm up, then",
        "ours and its baseline run back to back, alternating who goes first, and the table shows",
        "the medians. Ratio: ours / baseline, except for the imports, where it is our",
        "throughput as a fraction of the baseline's (higher is better). No timing is asserted",
        "anywhere; the numbers are only as steady as the machine, so read ratios rather than",
        "absolute times.",
        "",
        *READING.strip("\n").splitlines(),
        "",
    ]
    for scale, run in runs.items():
        lines += _before_and_after(results_dir / f"{scale}-before.json", scale, run)
        m = run["machine"]
        rows = ", ".join(f"{n:,} {t}" for t, n in run["facts"]["rows"].items())
        lines += [
            f"## SCALE={scale}",
            "",
            f"{run['date']}: {m['cpus']} CPUs ({m['cpu']}), {m['memory_gb']} GB, PostgreSQL"
            f" {m['postgresql']} (embedded), Python {m['python']}, psql {m['psql']}.",
            f"Data: {rows}; database {run['facts']['database_size']}, generated in"
            f" {run['generate_seconds']:.0f} s. {run['results'][0]['runs']} runs per read case,"
            f" {run['results'][-1]['runs']} per write case.",
            "",
            *table(run["results"]),
            "",
            "| case | ours | baseline |",
            "|---|---|---|",
            *[
                f"| {r['case']} | `{r['ours_command']}` | {r['baseline_command']} |"
                for r in run["results"]
            ],
            "",
            "Listings: server time from `EXPLAIN (ANALYZE, BUFFERS)` of the statements each"
            " command sends, with the scans of its plan.",
            "",
            "| listing | server time | buffers | scans |",
            "|---|---:|---:|---|",
            *[
                f"| {p['listing']} | {p['server_ms']:.2f} ms | {p['buffers']:,} |"
                f" {'; '.join(p['scans'])} |"
                for p in run["plans"]
            ],
            "",
        ]
        for name, plan in run.get("explains", {}).items():
            lines += [
                f"{name}: the plan of its main statement, with the time of every trigger"
                " (auto_explain: ANALYZE, BUFFERS, TRIGGERS; one more run, rolled back):",
                "",
                "```",
                *plan.splitlines(),
                "```",
                "",
            ]
        lines += [
            "Sizes, and the reviewers' queue (`rules list --pending --min-confidence 0.9"
            " --limit 50 --as` its reviewer) by organization size:",
            "",
            "| table | rows | table | indexes |",
            "|---|---:|---:|---:|",
            *[
                f"| {t['table']} | {t['rows']:,} | {t['table_bytes'] / 2**20:,.0f} MB |"
                f" {t['index_bytes'] / 2**20:,.0f} MB |"
                for t in run["sizes"]
            ],
            "",
            "| organization | its rules | server time | buffers |",
            "|---|---:|---:|---:|",
            *[
                f"| {o['organization']} | {o['rules']:,} | {o['server_ms']:.2f} ms |"
                f" {o['buffers']:,} |"
                for o in run["organizations"]
            ],
            "",
        ]
    if len(runs) > 1:
        scales = list(runs)
        lines += [
            "## Growth",
            "",
            "The same listings at every scale run so far (server time); they should stay flat.",
            "",
            "| listing | " + " | ".join(scales) + " |",
            "|---|" + "---:|" * len(scales),
        ]
        for plan in runs[scales[0]]["plans"]:
            cells = [
                _cell(runs[s]["plans"], "listing", plan["listing"], "server_ms") for s in scales
            ]
            lines.append(f"| {plan['listing']} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "| case (ours) | " + " | ".join(scales) + " |",
            "|---|" + "---:|" * len(scales),
        ]
        for result in runs[scales[0]]["results"]:
            cells = [_cell(runs[s]["results"], "case", result["case"], "ours") for s in scales]
            lines.append(f"| {result['case']} | " + " | ".join(cells) + " |")
        lines.append("")
    document.write_text("\n".join(lines))
