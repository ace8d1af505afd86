"""`generated import | list | show | export`: generated code in and out, byte for byte, and an
export that cannot be talked into writing outside its directory."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import rows

ANA = ("--as", "ana@acme.test")
BOB = ("--as", "bob@globex.test")

# path -> (bytes, inferred type, language, lines)
TREE: dict[str, tuple[bytes, str, str | None, int]] = {
    "src/main/java/com/acme/LoanCalc.java": (
        b"package com.acme;\n\npublic class LoanCalc {}\n",
        "source",
        "java",
        3,
    ),
    "src/test/java/com/acme/LoanCalcTest.java": (b"class LoanCalcTest {}\n", "test", "java", 1),
    "pom.xml": (b"<project/>\n", "config", None, 1),
    "README.md": (b"# Loans\r\nCRLF and no final newline", "doc", None, 2),
    "config/application.yaml": (b"rate: 0.0525\n", "config", None, 1),
    "tools/gen.py": ("\ufeff# taux d'intérêt\nprint('€')\n".encode(), "source", "python", 2),
    "tools/test_gen.py": (b"def test_gen(): pass\n", "test", "python", 1),
    "svc/rates_test.go": (b"package svc\n", "test", "go", 1),
    "svc/rates.go": (b"package svc\n", "source", "go", 1),
    "web/app.ts": (b"export {};\n", "source", "typescript", 1),
    "dotnet/Loan.cs": (b"class Loan {}\n", "source", "csharp", 1),
    "scripts/run.sh": (b"#!/bin/sh\n", "source", None, 1),
    "empty.txt": (b"", "source", None, 0),
}


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def out(tmp_path: Path) -> Path:
    root = write_files(tmp_path / "out", {path: spec[0] for path, spec in TREE.items()})
    write_files(root, {".git/config": b"[core]\n"})  # version control: never walked
    return root


@pytest.fixture
def loans(acme: Any) -> uuid.UUID:
    created = acme(
        *ANA, "projects", "create", "Loans core", "--source", "cobol", "--target", "java", "-q"
    )
    assert created.exit_code == 0, created.stderr
    return uuid.UUID(created.stdout.strip())


def import_out(mp: Any, root: Path, *options: str) -> Any:
    return mp(*ANA, "generated", "import", str(root), "--project", "Loans core", *options)


def export_to(mp: Any, root: Path, *options: str) -> Any:
    return mp(*ANA, "generated", "export", str(root), "--project", "Loans core", *options)


def stored(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return rows(
        conn,
        "SELECT path, type::text, language::text, line_count, size_bytes, sha256"
        " FROM generated_files ORDER BY path",
    )


def tree_listing(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


def insert_generated(conn: psycopg.Connection[Any], project_id: uuid.UUID, path: str) -> None:
    content = f"// {path}\n"
    conn.execute(
        "INSERT INTO generated_files (organization_id, project_id, path, content, size_bytes,"
        " sha256) SELECT organization_id, id, %s, %s, %s, %s FROM projects WHERE id = %s",
        (path, content, len(content), hashlib.sha256(content.encode()).hexdigest(), project_id),
    )


def test_import_infers_type_and_language_and_measures_each_file(
    acme: Any, loans: uuid.UUID, out: Path, conn: psycopg.Connection[Any]
) -> None:
    result = import_out(acme, out, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "added": 13,
        "changed": 0,
        "unchanged": 0,
        "skipped": 0,
        "skipped_by_reason": {"excluded": 0, "binary": 0, "not_regular_file": 0},
        "by_type": {"source": 7, "test": 3, "config": 2, "doc": 1},
        "waited_seconds": 0.0,  # no other import was writing to the project
    }
    assert stored(conn) == sorted(
        (path, kind, language, lines, len(data), hashlib.sha256(data).hexdigest())
        for path, (data, kind, language, lines) in TREE.items()
    )
    assert rows(conn, "SELECT content FROM generated_files WHERE path = 'tools/gen.py'") == [
        (TREE["tools/gen.py"][0].decode(),)  # the byte-order mark is kept
    ]
    assert rows(
        conn,
        "SELECT action, a.organization_id = p.organization_id, metadata->>'count'"
        " FROM audit_logs AS a, projects AS p WHERE action = 'generated_file.create'"
        " AND p.id = %s",
        loans,
    ) == [("generated_file.create", True, "13")]


def test_type_option_overrides_the_inference(
    acme: Any, loans: uuid.UUID, out: Path, conn: psycopg.Connection[Any]
) -> None:
    import_out(acme, out, "--type", "doc", "--exclude", "src/**")
    assert {kind for _, kind, *_ in stored(conn)} == {"doc"}
    assert "src/main/java/com/acme/LoanCalc.java" not in [path for path, *_ in stored(conn)]
    assert import_out(acme, out, "--type", "binary").exit_code == 2


def test_reimport_is_idempotent_then_reports_changes(
    acme: Any, loans: uuid.UUID, out: Path, conn: psycopg.Connection[Any]
) -> None:
    import_out(acme, out)
    before = rows(conn, "SELECT path, updated_at FROM generated_files ORDER BY path")
    again = json.loads(import_out(acme, out, "--format", "json").stdout)
    assert (again["added"], again["changed"], again["unchanged"]) == (0, 0, 13)
    assert rows(conn, "SELECT path, updated_at FROM generated_files ORDER BY path") == before

    (out / "pom.xml").write_bytes(b"<project><modules/></project>\n")
    (out / "svc" / "new.go").write_bytes(b"package svc\n")
    (out / "empty.txt").unlink()
    changed = json.loads(import_out(acme, out, "--format", "json").stdout)
    assert (changed["added"], changed["changed"], changed["unchanged"]) == (1, 1, 11)
    assert "empty.txt" in [path for path, *_ in stored(conn)]  # kept: nothing is pruned
    retyped = json.loads(import_out(acme, out, "--type", "source", "--format", "json").stdout)
    assert retyped["changed"] == 6  # every file whose inferred type was not source


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"PK\x03\x04\x00\x00", "binary (NUL byte at offset 4)"),
        ("taux d'intérêt\n".encode("cp1252"), "not UTF-8 (invalid byte at offset 10)"),
    ],
)
def test_binary_or_non_utf8_file_fails_the_import_unless_skipped(
    acme: Any, loans: uuid.UUID, out: Path, conn: psycopg.Connection[Any], data: bytes, reason: str
) -> None:
    (out / "lib").mkdir()
    (out / "lib" / "app.jar").write_bytes(data)
    refused = import_out(acme, out)
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: lib/app.jar: {reason}; generated files are stored as UTF-8 text"
        " (pass --skip-binary to leave such files out)\n"
    )
    assert stored(conn) == []
    assert rows(
        conn, "SELECT count(*) FROM audit_logs WHERE starts_with(action, 'generated_file.')"
    ) == [(0,)]
    skipped = json.loads(import_out(acme, out, "--skip-binary", "--format", "json").stdout)
    assert (skipped["added"], skipped["skipped_by_reason"]["binary"]) == (13, 1)


def test_symlinks_are_not_followed_and_a_missing_directory_is_refused(
    acme: Any, loans: uuid.UUID, out: Path, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.java"
    secret.write_text("class Secret {}\n")
    (out / "Link.java").symlink_to(secret)
    result = json.loads(import_out(acme, out, "--format", "json").stdout)
    assert result["skipped_by_reason"]["not_regular_file"] == 1
    assert "Link.java" not in [path for path, *_ in stored(conn)]
    missing = import_out(acme, tmp_path / "nope")
    assert (missing.exit_code, "not a directory" in missing.stderr) == (2, True)


def test_list_columns_type_filter_and_visibility(
    acme: Any, loans: uuid.UUID, out: Path, conn: psycopg.Connection[Any]
) -> None:
    import_out(acme, out)
    listed = acme(*ANA, "generated", "list", "--project", "Loans core").stdout.splitlines()
    pom = next(line.split("\t") for line in listed if "\tpom.xml\t" in line)
    sha = hashlib.sha256(TREE["pom.xml"][0]).hexdigest()
    assert pom[1:7] == ["pom.xml", "config", "", "1", "11", sha]
    assert len(pom) == 8
    assert rows(conn, "SELECT id FROM generated_files WHERE path = 'pom.xml'") == [
        (uuid.UUID(pom[0]),)
    ]
    tests = acme(*ANA, "generated", "list", "--type", "test", "--format", "json").stdout
    assert [row["path"] for row in json.loads(tests)] == [
        "src/test/java/com/acme/LoanCalcTest.java",
        "svc/rates_test.go",
        "tools/test_gen.py",
    ]
    ids = acme("generated", "list", "-q").stdout.split()
    assert len(ids) == 13
    assert sorted(map(uuid.UUID, ids)) == sorted(
        i for (i,) in rows(conn, "SELECT id FROM generated_files")
    )
    assert acme(*BOB, "generated", "list").stdout == ""


def test_show_prints_the_stored_content_exactly(acme: Any, loans: uuid.UUID, out: Path) -> None:
    import_out(acme, out)
    shown = acme(*ANA, "generated", "show", "tools/gen.py", "--project", "Loans core")
    assert shown.stdout == TREE["tools/gen.py"][0].decode()
    # (The test runner folds CRLF in captured output; the export test checks README.md's bytes.)
    missing = acme(*ANA, "generated", "show", "NOPE.md", "--project", "Loans core")
    assert (missing.exit_code, missing.stderr) == (
        4,
        "error: no generated file 'NOPE.md' in this project; see `migrationpilot generated list`\n",
    )
    assert acme(*BOB, "generated", "show", "README.md", "--project", str(loans)).exit_code == 4


def test_export_round_trip_gives_back_the_same_bytes(
    acme: Any, loans: uuid.UUID, out: Path, tmp_path: Path
) -> None:
    import_out(acme, out)
    target = tmp_path / "exported" / "nested"
    result = export_to(acme, target, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "directory": str(target.resolve()),
        "written": 13,
        "overwritten": 0,
        "bytes": sum(len(data) for data, *_ in TREE.values()),
    }
    assert tree_listing(target) == {path: data for path, (data, *_) in TREE.items()}


def test_export_refuses_existing_files_unless_forced(
    acme: Any, loans: uuid.UUID, out: Path, tmp_path: Path
) -> None:
    import_out(acme, out)
    target = write_files(tmp_path / "exported", {"pom.xml": b"mine\n", "README.md": b"mine\n"})
    refused = export_to(acme, target)
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: 2 files already exist in {target}: 'README.md', 'pom.xml'; pass --force to"
        " overwrite; nothing written\n"
    )
    assert tree_listing(target) == {"pom.xml": b"mine\n", "README.md": b"mine\n"}
    forced = export_to(acme, target, "--force", "--format", "json")
    assert forced.exit_code == 0, forced.stderr
    assert (json.loads(forced.stdout)["written"], json.loads(forced.stdout)["overwritten"]) == (
        13,
        2,
    )
    assert tree_listing(target) == {path: data for path, (data, *_) in TREE.items()}


def test_export_refuses_a_file_or_directory_in_the_way_even_with_force(
    acme: Any, loans: uuid.UUID, out: Path, tmp_path: Path
) -> None:
    import_out(acme, out)
    target = write_files(tmp_path / "exported", {"svc": b"a file where a directory goes\n"})
    (target / "pom.xml").mkdir()
    refused = export_to(acme, target, "--force")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: cannot export 'pom.xml', 'svc/rates.go',")
    assert tree_listing(target) == {"svc": b"a file where a directory goes\n"}
    a_file = export_to(acme, target / "svc")
    assert (a_file.exit_code, a_file.stderr) == (2, f"error: {target / 'svc'}: not a directory\n")


@pytest.mark.parametrize("escaping", ["../escape.txt", "src/../../escape.txt", "ABSOLUTE"])
def test_export_refuses_paths_that_leave_the_directory_even_when_the_database_allows_them(
    acme: Any, loans: uuid.UUID, conn: psycopg.Connection[Any], tmp_path: Path, escaping: str
) -> None:
    # This test's database is a throwaway clone: make it as wrong as a careless psql user could.
    for constraint in ("generated_files_path_no_dotdot", "generated_files_path_relative"):
        conn.execute(f"ALTER TABLE generated_files DROP CONSTRAINT {constraint}")
    path = str(tmp_path / "escape.txt") if escaping == "ABSOLUTE" else escaping
    insert_generated(conn, loans, "src/Main.java")
    insert_generated(conn, loans, path)
    target = tmp_path / "exported"
    refused = export_to(acme, target, "--force")
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: refusing to export: stored paths {path!r} are absolute or lead outside"
        f" {target}; nothing written\n"
    )
    assert not target.exists()
    assert not (tmp_path / "escape.txt").exists()


def test_export_refuses_a_path_through_a_symlink_that_leads_outside(
    acme: Any, loans: uuid.UUID, out: Path, tmp_path: Path
) -> None:
    import_out(acme, out)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = tmp_path / "exported"
    target.mkdir()
    (target / "svc").symlink_to(outside, target_is_directory=True)
    (target / "pom.xml").symlink_to(outside / "pom.xml")
    refused = export_to(acme, target, "--force")
    assert refused.exit_code == 2
    assert refused.stderr == (
        "error: refusing to export: stored paths 'pom.xml', 'svc/rates.go', 'svc/rates_test.go'"
        f" are absolute or lead outside {target}; nothing written\n"
    )
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in target.iterdir()) == ["pom.xml", "svc"]


def test_export_refuses_stored_paths_that_cannot_all_be_files(
    acme: Any, loans: uuid.UUID, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    insert_generated(conn, loans, "src")
    insert_generated(conn, loans, "src/Main.java")
    refused = export_to(acme, tmp_path / "exported")
    assert refused.exit_code == 2
    assert "stored paths 'src' are both a file and a directory" in refused.stderr
    assert not (tmp_path / "exported").exists()


def test_another_organization_can_neither_see_nor_export(
    acme: Any, loans: uuid.UUID, out: Path, tmp_path: Path
) -> None:
    import_out(acme, out)
    target = tmp_path / "stolen"
    refused = acme(*BOB, "generated", "export", str(target), "--project", str(loans))
    assert (refused.exit_code, refused.stderr) == (
        4,
        f"error: no project '{loans}'; see `migrationpilot projects list`\n",
    )
    assert not target.exists()
    operator = acme("generated", "export", str(target), "--project", str(loans))
    assert operator.exit_code == 0, operator.stderr
    assert len(tree_listing(target)) == 13
