"""Legacy source files of a project: a bulk, idempotent import and the listings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.queries import copy_rows, one

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection
    from migrationpilot_cli.sourcetree import SourceFile

COLUMNS = (
    "id",
    "path",
    "language",
    "lines",
    "code_lines",
    "comment_lines",
    "blank_lines",
    "size_bytes",
    "encoding",
    "sha256",
    "updated_at",
)

_STAGE = """
CREATE TEMPORARY TABLE staged_source_files (
    path text PRIMARY KEY, content text NOT NULL, language source_file_kind NOT NULL,
    encoding text NOT NULL, size_bytes bigint NOT NULL, sha256 text NOT NULL,
    line_count integer NOT NULL, code_lines integer NOT NULL, comment_lines integer NOT NULL,
    blank_lines integer NOT NULL
) ON COMMIT DROP
"""
_FILE_COLUMNS = """path, content, language, encoding, size_bytes, sha256, line_count,
                   code_lines, comment_lines, blank_lines"""
_COPY = f"COPY staged_source_files ({_FILE_COLUMNS}) FROM STDIN (FORMAT BINARY)"
# Binary COPY: the server takes each text as it comes instead of parsing escapes out of 60 MB
# of source, and the client need not escape them. An enum's binary form is its label's text.
_COPY_TYPES = ("text", "text", "text", "text", "int8", "text", "int4", "int4", "int4", "int4")
# A project's first import has nothing to compare against, so the files can go straight into
# source_files, saving the staging table's second write (10,000 files: 0.12 s of 0.7). COPY
# FROM is refused where row-level security applies (a user acting with --as), so only a
# connection that bypasses it (the operator) takes this way.
_DIRECT = """
SELECT NOT row_security_active('source_files')
       AND NOT EXISTS (SELECT 1 FROM source_files
                       WHERE organization_id = %(organization)s AND project_id = %(project)s)
       AS direct
"""
_COPY_DIRECT = (
    f"COPY source_files (organization_id, project_id, {_FILE_COLUMNS}) FROM STDIN (FORMAT BINARY)"
)
# One set-based statement per outcome. The tenant's line limit is checked by the database's
# statement-level triggers on source_files, once per statement.
_UPDATE_CHANGED = """
UPDATE source_files f
SET content = s.content, language = s.language, encoding = s.encoding,
    size_bytes = s.size_bytes, sha256 = s.sha256, line_count = s.line_count,
    code_lines = s.code_lines, comment_lines = s.comment_lines, blank_lines = s.blank_lines
FROM staged_source_files s
WHERE f.project_id = %(project)s AND f.path = s.path
  AND (f.sha256, f.language, f.encoding) IS DISTINCT FROM (s.sha256, s.language, s.encoding)
RETURNING f.path
"""
_INSERT_NEW = """
INSERT INTO source_files (organization_id, project_id, path, content, language, encoding,
                          size_bytes, sha256, line_count, code_lines, comment_lines, blank_lines)
SELECT %(organization)s, %(project)s, s.path, s.content, s.language, s.encoding, s.size_bytes,
       s.sha256, s.line_count, s.code_lines, s.comment_lines, s.blank_lines
FROM staged_source_files s
WHERE NOT EXISTS (SELECT 1 FROM source_files f
                  WHERE f.project_id = %(project)s AND f.path = s.path)
ORDER BY s.path
RETURNING path
"""
_GONE = """
SELECT f.path FROM source_files f
WHERE f.project_id = %(project)s
  AND NOT EXISTS (SELECT 1 FROM staged_source_files s WHERE s.path = f.path)
ORDER BY f.path
"""
_PRUNE = """
DELETE FROM source_files f
WHERE f.project_id = %(project)s
  AND NOT EXISTS (SELECT 1 FROM staged_source_files s WHERE s.path = f.path)
"""


def merge(
    conn: Connection, project: dict[str, Any], files: Iterable[SourceFile], *, prune: bool
) -> dict[str, list[str]]:
    """Bring the project's stored files in line with ``files``: COPY into a staging table,
    then one statement each for changed, new and (with ``prune``) removed files; or, on the
    operator's first import of the project, COPY straight into source_files.

    ``files`` may be a generator reading the tree: the server stores each file while the
    next is read. Returns the paths by outcome: added, changed, unchanged, removed."""
    ids = {"project": project["id"], "organization": project["organization_id"]}
    paths: list[str] = []
    # The statement triggers of source_files (tenant line limit, audit, project access) read
    # the statement's rows, text and all, from a transition table that PostgreSQL keeps in
    # work_mem and spills to a temporary file beyond it: at the default 4MB, 60 MB of source
    # is written out and read back three times (10,000 files: 0.15-0.2 s of the server's
    # 0.9 s of CPU). This transaction alone gets room for a large tree.
    conn.execute("SET LOCAL work_mem = '256MB'")
    if _may_copy_directly(conn, ids):
        owner = (project["organization_id"], project["id"])
        rows = _file_rows(files, paths, owner)
        copy_rows(conn, _COPY_DIRECT, rows, types=("uuid", "uuid", *_COPY_TYPES))
        return {"added": paths, "changed": [], "unchanged": [], "removed": []}
    conn.execute(_STAGE)
    copy_rows(conn, _COPY, _file_rows(files, paths), types=_COPY_TYPES)
    changed = [row["path"] for row in conn.execute(_UPDATE_CHANGED, ids).fetchall()]
    added = [row["path"] for row in conn.execute(_INSERT_NEW, ids).fetchall()]
    removed = [row["path"] for row in conn.execute(_GONE, ids).fetchall()]
    if prune and removed:
        conn.execute(_PRUNE, ids)
    touched = set(changed) | set(added)
    unchanged = [path for path in paths if path not in touched]
    return {"added": added, "changed": changed, "unchanged": unchanged, "removed": removed}


def _may_copy_directly(conn: Connection, ids: dict[str, int]) -> bool:
    row = conn.execute(_DIRECT, ids).fetchone()
    assert row is not None, "a SELECT without FROM returns one row"
    return bool(row["direct"])


def _file_rows(
    files: Iterable[SourceFile], paths: list[str], owner: tuple[int, ...] = ()
) -> Iterator[tuple[Any, ...]]:
    """The COPY rows of ``files`` (``owner``'s columns first), noting each path in ``paths``
    as it goes by."""
    for file in files:
        counts = file.lines
        paths.append(file.path)
        yield (
            *owner,
            file.path,
            file.content,
            file.language,
            file.encoding,
            file.size_bytes,
            file.sha256,
            counts.total,
            counts.code,
            counts.comment,
            counts.blank,
        )


def list_for_project(
    conn: Connection, project_id: UUID, language: str | None
) -> list[dict[str, Any]]:
    return conn.execute(
        """
        SELECT id, path, language::text AS language, line_count AS lines, code_lines,
               comment_lines, blank_lines, size_bytes, encoding, sha256, updated_at
        FROM source_files
        WHERE project_id = %(project)s
          AND (%(language)s::source_file_kind IS NULL OR language = %(language)s)
        ORDER BY path
        """,
        {"project": project_id, "language": language},
    ).fetchall()


def get(conn: Connection, project_id: UUID, path: str) -> dict[str, Any]:
    return one(
        conn,
        "SELECT id, path, language::text AS language, content, line_count AS lines"
        " FROM source_files WHERE project_id = %s AND path = %s",
        (project_id, path.strip("/")),
        missing=f"no file {path!r} in this project; see `migrationpilot files list`",
    )
