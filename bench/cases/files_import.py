r"""files import: a tree of COBOL files against psql's `\copy` of the same content, and against
the database floor (psql's `\copy` of the finished rows into source_files)."""

import csv
import hashlib
import uuid
from dataclasses import replace

from bench.data import WRITES, Context, copy_baseline, drop_project, fresh_project
from bench.measure import MP, Baseline, Case, Command
from bench.server import psql_copy
from migrationpilot_cli import sourcecode

NAME = "files import"
LINES_PER_FILE = 100  # 10,000 files: 1M lines
# The files import's project: one fixed id, so that the floor's CSV can carry it.
FILES_PROJECT_ID = uuid.UUID("f11e5000-0000-4000-8000-000000000001")


def build(ctx: Context) -> Case:
    url, psql, work, target = ctx.url, ctx.psql, ctx.work, ctx.target
    count = WRITES[ctx.scale]["import_files"]
    tree = work / "legacy"
    rows, stored = [], []
    owner = (target.organization_id, FILES_PROJECT_ID)
    for number in range(count):
        path = f"src/batch{number % 20:02d}/PROG{number:05d}.cbl"
        body = [f"      * PROGRAM {number}: MONTHLY INTEREST"]
        body += [
            f"           COMPUTE WS-INTEREST-{line} = WS-BALANCE * WS-RATE / 12."
            for line in range(LINES_PER_FILE - 1)
        ]
        content = "\n".join(body) + "\n"
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(content)
        rows.append((path, content))
        lines = sourcecode.count_lines(content, "cobol")
        data = content.encode()
        checksum = hashlib.sha256(data).hexdigest()
        counts = (lines.total, lines.code, lines.comment, lines.blank)
        stored.append((*owner, path, content, "cobol", "utf-8", len(data), checksum, *counts))
    csv_file, stored_csv = work / "files.csv", work / "files_stored.csv"
    with csv_file.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with stored_csv.open("w", newline="") as handle:
        csv.writer(handle).writerows(stored)
    name = "Bench files import"
    ours = Command(
        [MP, "--database-url", url, "files", "import", str(tree), "--project", name],
        setup=lambda: fresh_project(
            url, replace(target, source_language="cobol"), name, None, FILES_PROJECT_ID
        ),
        cleanup=lambda: drop_project(url, name, "source_files"),
    )
    baseline = copy_baseline(url, psql, "bench_bare_files", "path text, content text", csv_file)
    # What the database itself costs for the same files: source_files' constraints, indexes,
    # foreign key and triggers, with the rows (line counts and checksums included) already
    # made, so none of our code runs. The project keeps one id so the CSV can carry it.
    columns = (
        "organization_id, project_id, path, content, language, encoding, size_bytes, sha256,"
        " line_count, code_lines, comment_lines, blank_lines"
    )
    floor = Command(
        psql_copy(psql, url, f"source_files ({columns})", stored_csv),
        setup=ours.setup,
        cleanup=ours.cleanup,
    )
    return Case(
        ours,
        f"migrationpilot files import ({count:,} files, {count * LINES_PER_FILE:,} lines)",
        [
            Baseline(NAME, baseline, "psql \\copy of the same content", ">= 0.5"),
            Baseline(
                "files import (database floor)",
                floor,
                "psql \\copy of the rows we store into source_files",
                "report",
            ),
        ],
        rows=count,
    )
