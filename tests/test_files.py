"""`files import | list | show`: a real legacy tree on disk into the database, all or nothing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migrationpilot_cli import sourcetree
from tests.conftest import CONSOLE_SCRIPT, rows

ANA = ("--as", "ana@acme.test")
OPERATOR: tuple[str, ...] = ()
# Who imports decides the way in: a user acting with --as is under row level security, so the
# files are staged and merged; the operator's first import of a project COPYs them straight
# into source_files. Both must store the same rows and refuse the same way.
BOTH_WAYS = pytest.mark.parametrize("actor", [ANA, OPERATOR], ids=["as-user", "operator"])

# Fixed-format COBOL: sequence numbers in columns 1-6, the indicator in column 7, and an
# identification area from column 73. Lines: 12 = 7 code + 3 comment + 2 blank.
LOANCALC = """\
000100 IDENTIFICATION DIVISION.                                         LOANCALC
000200 PROGRAM-ID. LOANCALC.
000300*    MONTHLY INTEREST ON THE OUTSTANDING PRINCIPAL
000400
000500 DATA DIVISION.
000600 WORKING-STORAGE SECTION.
000700 01  WS-RATE        PIC 9V9(4) VALUE 0.0525.
000800/
000900 PROCEDURE DIVISION.
001000     *> rate is annual: divide by twelve
001100     COMPUTE WS-INTEREST = WS-PRINCIPAL * WS-RATE / 12.
001200                                                                          LOANCALC
"""
# A copybook: 3 lines = 2 code + 1 comment.
LOANREC = "      * LOAN RECORD\n       01  LOAN-REC.\n           05 LOAN-AMOUNT PIC 9(7)V99.\n"
# Free-form Fortran: 5 = 3 code + 1 comment + 1 blank.
RATES_F90 = "! interest tables\nprogram rates\n\n  real :: r = 0.05\nend program rates\n"
# Fixed-form Fortran: 4 = 2 code + 2 comment.
RATES_F = "C     OLD RATE TABLE\n*     KEPT FOR AUDIT\n      REAL R\n      END\n"
# A cp1252 export (é is 0xE9, € is 0x80): 2 = 1 code + 1 comment.
LEGACY_CP1252 = "      * taux d'intérêt 5 € par mois\n       DISPLAY 'OK'.\n".encode("cp1252")


def write_tree(root: Path) -> Path:
    files = {
        "src/LOANCALC.cbl": LOANCALC.encode(),
        "copy/LOANREC.cpy": LOANREC.encode(),
        "batch/rates.f90": RATES_F90.encode(),
        "batch/old/RATES.F": RATES_F.encode(),
        "src/FRENCH.cbl": LEGACY_CP1252,
        "test/TLOAN.cbl": b"       DISPLAY 'TEST'.\n",
        "docs/README.md": b"# not source\n",
        "src/LOANCALC.o": b"\x7fELF\x00\x00",
        "src/DUMP.cbl": b"\x00\x01binary",
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "legacy")


@pytest.fixture
def loans(acme: Any) -> Any:
    created = acme(
        *ANA, "projects", "create", "Loans core", "--source", "cobol", "--target", "java", "-q"
    )
    assert created.exit_code == 0
    return uuid.UUID(created.stdout.strip())


def stored(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return rows(
        conn,
        "SELECT path, language::text, encoding, line_count, code_lines,"
        " comment_lines, blank_lines FROM source_files ORDER BY path",
    )


def import_files(acme: Any, tree: Path, *options: str, actor: tuple[str, ...] = ANA) -> Any:
    return acme(*actor, "files", "import", str(tree), "--project", "Loans core", *options)


@BOTH_WAYS
def test_import_stores_each_file_with_language_encoding_and_line_counts(
    acme: Any, loans: uuid.UUID, tree: Path, conn: psycopg.Connection[Any], actor: tuple[str, ...]
) -> None:
    result = import_files(acme, tree, "--format", "json", actor=actor)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("added", "changed", "unchanged", "removed", "skipped")} == {
        "added": 6,
        "changed": 0,
        "unchanged": 0,
        "removed": 0,
        "skipped": 3,
    }
    assert summary["skipped_by_reason"] == {
        "excluded": 0,
        "unknown_extension": 2,
        "binary": 1,
        "unreadable": 0,
        "not_regular_file": 0,
    }
    assert summary["lines"] == 12 + 3 + 5 + 4 + 2 + 1
    assert stored(conn) == [
        ("batch/old/RATES.F", "fortran", "utf-8", 4, 2, 2, 0),
        ("batch/rates.f90", "fortran", "utf-8", 5, 3, 1, 1),
        ("copy/LOANREC.cpy", "cobol-copybook", "utf-8", 3, 2, 1, 0),
        ("src/FRENCH.cbl", "cobol", "cp1252", 2, 1, 1, 0),
        ("src/LOANCALC.cbl", "cobol", "utf-8", 12, 7, 3, 2),
        ("test/TLOAN.cbl", "cobol", "utf-8", 1, 1, 0, 0),
    ]
    assert rows(conn, "SELECT content FROM source_files WHERE path = 'src/FRENCH.cbl'") == [
        (LEGACY_CP1252.decode("cp1252"),)
    ]
    # One audit row for the statement that stored the six files, naming them.
    assert rows(
        conn,
        "SELECT metadata->>'count', metadata->'ids' = (SELECT jsonb_agg(id ORDER BY id)"
        " FROM source_files) FROM audit_logs WHERE action = 'source_file.create'",
    ) == [("6", True)]


@BOTH_WAYS
def test_reimport_is_idempotent_then_reports_changes_and_prunes(
    acme: Any, loans: uuid.UUID, tree: Path, conn: psycopg.Connection[Any], actor: tuple[str, ...]
) -> None:
    import_files(acme, tree, actor=actor)
    before = rows(conn, "SELECT path, updated_at FROM source_files ORDER BY path")
    again = json.loads(import_files(acme, tree, "--format", "json", actor=actor).stdout)
    assert (again["added"], again["changed"], again["unchanged"]) == (0, 0, 6)
    assert rows(conn, "SELECT path, updated_at FROM source_files ORDER BY path") == before

    (tree / "src" / "LOANCALC.cbl").write_text(LOANCALC + "000000     STOP RUN.\n")
    (tree / "src" / "NEW.cbl").write_text("       STOP RUN.\n")
    (tree / "copy" / "LOANREC.cpy").unlink()
    changed = json.loads(import_files(acme, tree, "--format", "json", actor=actor).stdout)
    assert {k: changed[k] for k in ("added", "changed", "unchanged", "removed")} == {
        "added": 1,
        "changed": 1,
        "unchanged": 4,
        "removed": 1,
    }
    assert "copy/LOANREC.cpy" in [path for path, *_ in stored(conn)]  # kept without --prune
    pruned = json.loads(import_files(acme, tree, "--prune", "--format", "json", actor=actor).stdout)
    assert (pruned["removed"], pruned["pruned"]) == (1, True)
    assert "copy/LOANREC.cpy" not in [path for path, *_ in stored(conn)]
    assert rows(conn, "SELECT line_count FROM source_files WHERE path = 'src/LOANCALC.cbl'") == [
        (13,)
    ]


def test_exclude_globs_and_forced_ebcdic_encoding(
    acme: Any, loans: uuid.UUID, tree: Path, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    result = import_files(
        acme, tree, "--exclude", "test/**", "--exclude", "*.F", "--format", "json"
    )
    assert json.loads(result.stdout)["skipped_by_reason"]["excluded"] == 2
    assert [p for p, *_ in stored(conn)] == [
        "batch/rates.f90",
        "copy/LOANREC.cpy",
        "src/FRENCH.cbl",
        "src/LOANCALC.cbl",
    ]

    mainframe = tmp_path / "mainframe"
    mainframe.mkdir()
    (mainframe / "PAYROLL.cbl").write_bytes("       DISPLAY 'PAYROLL'.\n".encode("cp037"))
    acme(*ANA, "projects", "create", "Payroll", "--source", "cobol", "--target", "go")
    ebcdic = acme(
        *ANA, "files", "import", str(mainframe), "--project", "Payroll", "--encoding", "cp037"
    )
    assert ebcdic.exit_code == 0, ebcdic.stderr
    assert rows(conn, "SELECT content, encoding FROM source_files WHERE path = 'PAYROLL.cbl'") == [
        ("       DISPLAY 'PAYROLL'.\n", "cp037")
    ]


@pytest.mark.parametrize(
    "options, message",
    [
        (("--encoding", "klingon"), "--encoding 'klingon': unknown encoding"),
        (("--encoding", "ascii"), "src/FRENCH.cbl: "),
    ],
)
def test_bad_encoding_fails_the_whole_import(
    acme: Any,
    loans: uuid.UUID,
    tree: Path,
    conn: psycopg.Connection[Any],
    options: tuple[str, ...],
    message: str,
) -> None:
    result = import_files(acme, tree, *options)
    assert result.exit_code == 2
    assert message in result.stderr
    assert stored(conn) == []


def test_unreadable_file_fails_unless_skipped(
    acme: Any,
    loans: uuid.UUID,
    tree: Path,
    conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Permission bits do not stop root (CI runs as root), so the refusal is injected where
    # the operating system would raise it: the one function through which the tree is read.
    read_bytes = sourcetree.read_bytes

    def refuse_locked(path: str) -> bytes:
        if path.endswith("/LOANCALC.cbl"):
            raise PermissionError(13, "Permission denied")
        return read_bytes(path)

    monkeypatch.setattr(sourcetree, "read_bytes", refuse_locked)
    refused = import_files(acme, tree)
    assert refused.exit_code == 2
    assert refused.stderr == (
        "error: src/LOANCALC.cbl: cannot read (Permission denied); fix it or pass"
        " --skip-unreadable\n"
    )
    assert stored(conn) == []
    skipped = import_files(acme, tree, "--skip-unreadable", "--format", "json")
    assert skipped.exit_code == 0
    assert json.loads(skipped.stdout)["skipped_by_reason"]["unreadable"] == 1
    assert len(stored(conn)) == 5


def test_read_bytes_reads_to_the_end_whatever_fstat_says(tmp_path: Path) -> None:
    # The file is read in one call of the size fstat gives: an empty file, a large one, and
    # one whose size fstat does not know (0 for /proc, Linux) must still come back whole.
    empty, large = tmp_path / "EMPTY.cbl", tmp_path / "LARGE.cbl"
    empty.write_bytes(b"")
    large.write_bytes(bytes(range(256)) * 4096)
    assert sourcetree.read_bytes(str(empty)) == b""
    assert sourcetree.read_bytes(str(large)) == large.read_bytes()
    unsized = Path("/proc/self/cmdline")
    if unsized.exists():
        assert unsized.stat().st_size == 0
        assert sourcetree.read_bytes(str(unsized)) == unsized.read_bytes() != b""
    with pytest.raises(IsADirectoryError):
        sourcetree.read_bytes(str(tmp_path))


def test_symlinks_are_not_followed(
    acme: Any, loans: uuid.UUID, tree: Path, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    outside = tmp_path / "outside.cbl"
    outside.write_text("       DISPLAY 'SECRET'.\n")
    (tree / "src" / "LINK.cbl").symlink_to(outside)
    result = json.loads(import_files(acme, tree, "--format", "json").stdout)
    assert result["skipped_by_reason"]["not_regular_file"] == 1
    assert "src/LINK.cbl" not in [path for path, *_ in stored(conn)]


def test_links_to_directories_are_neither_followed_nor_counted(
    acme: Any, loans: uuid.UUID, tree: Path, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "SECRET.cbl").write_text("       DISPLAY 'SECRET'.\n")
    (tree / "linked").symlink_to(elsewhere, target_is_directory=True)
    (tree / "src" / "DANGLING.cbl").symlink_to(tmp_path / "gone.cbl")
    result = json.loads(import_files(acme, tree, "--format", "json").stdout)
    # As os.walk had it: the link to a directory is skipped silently, a dangling link is a
    # file that is not regular.
    assert (result["added"], result["skipped_by_reason"]["not_regular_file"]) == (6, 1)
    assert not [path for path, *_ in stored(conn) if "SECRET" in path or "DANGLING" in path]


def test_line_endings_empty_and_unterminated_files_keep_their_counts(
    acme: Any, loans: uuid.UUID, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    tree = tmp_path / "edges"
    tree.mkdir()
    files = {
        "CRLF.cbl": b"      * NOTE\r\n       DISPLAY 1.\r\n\r\n",  # 3 = 1 code, 1 comment, 1 blank
        "CR.cbl": b"      * NOTE\r       DISPLAY 1.\r",  # old Mac endings: 2 = 1 + 1
        "EMPTY.cbl": b"",  # no line at all
        "OPEN.f90": b"! last line has no newline\nend",  # 2 = 1 code + 1 comment
        "PC.bas": "' Intérêt\r\nx = 1 ' €\r\n".encode("cp1252"),  # 2 = 1 code + 1 comment
        "BOM.jcl": b"\xef\xbb\xbf//*\n//JOB\n",  # 2 = 1 code + 1 comment, BOM not stored
    }
    for name, data in files.items():
        (tree / name).write_bytes(data)
    result = acme(*ANA, "files", "import", str(tree), "--project", "Loans core")
    assert result.exit_code == 0, result.stderr
    size = {name: len(data) for name, data in files.items()}
    assert rows(
        conn,
        "SELECT path, content, encoding, size_bytes, line_count, code_lines,"
        " comment_lines, blank_lines FROM source_files ORDER BY path",
    ) == [  # size_bytes: the bytes on disk, BOM and CRs included
        ("BOM.jcl", "//*\n//JOB\n", "utf-8", size["BOM.jcl"], 2, 1, 1, 0),
        ("CR.cbl", "      * NOTE\n       DISPLAY 1.\n", "utf-8", size["CR.cbl"], 2, 1, 1, 0),
        ("CRLF.cbl", "      * NOTE\n       DISPLAY 1.\n\n", "utf-8", size["CRLF.cbl"], 3, 1, 1, 1),
        ("EMPTY.cbl", "", "utf-8", size["EMPTY.cbl"], 0, 0, 0, 0),
        ("OPEN.f90", "! last line has no newline\nend", "utf-8", size["OPEN.f90"], 2, 1, 1, 0),
        ("PC.bas", "' Intérêt\nx = 1 ' €\n", "cp1252", size["PC.bas"], 2, 1, 1, 0),
    ]
    # The checksum is of the bytes on disk, before decoding and normalizing.
    assert rows(conn, "SELECT path, sha256 FROM source_files ORDER BY path") == sorted(
        (name, hashlib.sha256(data).hexdigest()) for name, data in files.items()
    )


@BOTH_WAYS
def test_a_file_failing_after_many_were_sent_leaves_nothing_behind(
    acme: Any,
    loans: uuid.UUID,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    actor: tuple[str, ...],
) -> None:
    # Files are streamed to the server while the tree is read: a failure at the last file
    # must still end in one line, exit 2, and no file and no audit row stored.
    tree = tmp_path / "many"
    for number in range(300):
        (tree / f"batch{number % 3}").mkdir(parents=True, exist_ok=True)
        (tree / f"batch{number % 3}" / f"P{number:03d}.cbl").write_text("       STOP RUN.\n")
    (tree / "zz").mkdir()
    (tree / "zz" / "LAST.cbl").write_bytes("      * café\n".encode("cp1252"))
    result = import_files(acme, tree, "--encoding", "ascii", actor=actor)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: zz/LAST.cbl: not valid ascii: byte 0xe9 at offset 11 (ordinal not in range(128))\n"
    )
    assert stored(conn) == []
    assert rows(
        conn, "SELECT count(*) FROM audit_logs WHERE starts_with(action, 'source_file.')"
    ) == [(0,)]


def test_missing_directory_and_unknown_project(acme: Any, loans: uuid.UUID, tmp_path: Path) -> None:
    missing = acme(*ANA, "files", "import", str(tmp_path / "nope"), "--project", "Loans core")
    assert (missing.exit_code, "not a directory" in missing.stderr) == (2, True)
    unknown = acme(*ANA, "files", "import", str(tmp_path), "--project", "Nope")
    assert unknown.exit_code == 4


@BOTH_WAYS
def test_a_first_import_over_the_line_limit_stores_nothing(
    acme: Any, loans: uuid.UUID, tree: Path, conn: psycopg.Connection[Any], actor: tuple[str, ...]
) -> None:
    acme("tenants", "set", "acme", "--max-lines-of-code", "20")
    refused = import_files(acme, tree, actor=actor)
    assert (refused.exit_code, refused.stdout) == (1, "")
    assert "max_lines_of_code 20" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert stored(conn) == []
    assert rows(
        conn, "SELECT count(*) FROM audit_logs WHERE starts_with(action, 'source_file.')"
    ) == [(0,)]


def test_line_limit_leaves_the_project_exactly_as_before(
    acme: Any, loans: uuid.UUID, tree: Path, conn: psycopg.Connection[Any]
) -> None:
    import_files(acme, tree, "--exclude", "src/**")
    before = stored(conn)
    acme("tenants", "set", "acme", "--max-lines-of-code", "20")
    refused = import_files(acme, tree)
    assert refused.exit_code == 1
    assert "max_lines_of_code 20" in refused.stderr
    assert stored(conn) == before
    assert rows(
        conn, "SELECT count(*) FROM audit_logs WHERE starts_with(action, 'source_file.')"
    ) == [(1,)]


def test_two_concurrent_imports_cannot_both_pass_the_line_limit(
    acme: Any, tree: Path, conn: psycopg.Connection[Any], database_url: str
) -> None:
    acme("tenants", "set", "acme", "--max-lines-of-code", "30")
    for name in ("One", "Two"):
        acme(*ANA, "projects", "create", name, "--source", "cobol", "--target", "java")
    # Each import alone fits (27 lines); both together do not.
    imports = [
        subprocess.Popen(
            [
                str(CONSOLE_SCRIPT),
                "--database-url",
                database_url,
                *ANA,
                "files",
                "import",
                str(tree),
                "--project",
                name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("One", "Two")
    ]
    outcomes = sorted((process.wait(timeout=60), process.communicate()[1]) for process in imports)
    assert [code for code, _ in outcomes] == [0, 1]
    assert "max_lines_of_code 30" in outcomes[1][1]
    assert rows(conn, "SELECT sum(line_count) FROM source_files") == [(27,)]


def test_list_json_and_language_filter(acme: Any, loans: uuid.UUID, tree: Path) -> None:
    import_files(acme, tree)
    listed = json.loads(acme(*ANA, "files", "list", "-p", "Loans core", "--format", "json").stdout)
    loancalc = next(row for row in listed if row["path"] == "src/LOANCALC.cbl")
    assert {
        k: loancalc[k] for k in ("language", "lines", "code_lines", "comment_lines", "blank_lines")
    } == {
        "language": "cobol",
        "lines": 12,
        "code_lines": 7,
        "comment_lines": 3,
        "blank_lines": 2,
    }
    fortran = acme(*ANA, "files", "list", "-p", "Loans core", "--language", "fortran")
    assert [line.split("\t")[1] for line in fortran.stdout.splitlines()] == [
        "batch/old/RATES.F",
        "batch/rates.f90",
    ]
    assert acme(*ANA, "files", "list", "-p", "Loans core", "--language", "pl1").exit_code == 2


def test_show_prints_plain_text_when_piped_and_checks_the_range(
    acme: Any, loans: uuid.UUID, tree: Path
) -> None:
    import_files(acme, tree)
    whole = acme(*ANA, "files", "show", "src/LOANCALC.cbl", "-p", "Loans core")
    assert whole.stdout == LOANCALC
    excerpt = acme(*ANA, "files", "show", "src/LOANCALC.cbl", "-p", "Loans core", "--lines", "2-3")
    assert excerpt.stdout == "".join(LOANCALC.splitlines(keepends=True)[1:3])
    beyond = acme(*ANA, "files", "show", "src/LOANCALC.cbl", "-p", "Loans core", "--lines", "10-99")
    assert (beyond.exit_code, "the file has lines 1-12" in beyond.stderr) == (2, True)
    missing = acme(*ANA, "files", "show", "src/NOPE.cbl", "-p", "Loans core")
    assert missing.exit_code == 4
