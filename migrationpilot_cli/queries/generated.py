"""Generated files of a project (target code, tests, config, docs): a bulk, idempotent import,
the listings and the contents to export."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.queries import copy_rows, one

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

COLUMNS = ("id", "path", "type", "language", "lines", "size_bytes", "sha256", "updated_at")


@dataclass(frozen=True, slots=True)
class GeneratedFile:
    """A file read from disk, ready to stage: ``content`` is its UTF-8 text, unaltered."""

    path: str
    content: str
    type: str
    language: str | None
    size_bytes: int
    line_count: int
    sha256: str


_STAGE = """
CREATE TEMPORARY TABLE staged_generated_files (
    path text PRIMARY KEY, content text NOT NULL, type generated_file_type NOT NULL,
    language target_language, size_bytes bigint NOT NULL, line_count integer NOT NULL,
    sha256 text NOT NULL
) ON COMMIT DROP
"""
_COPY = """
COPY staged_generated_files (path, content, type, language, size_bytes, line_count, sha256)
FROM STDIN
"""
# The link to a rule (rule_id) is not part of what a directory says, so a re-import keeps it.
_UPDATE_CHANGED = """
UPDATE generated_files f
SET content = s.content, type = s.type, language = s.language, size_bytes = s.size_bytes,
    line_count = s.line_count, sha256 = s.sha256
FROM staged_generated_files s
WHERE f.project_id = %(project)s AND f.path = s.path
  AND (f.sha256, f.type, f.language) IS DISTINCT FROM (s.sha256, s.type, s.language)
RETURNING f.path
"""
_INSERT_NEW = """
INSERT INTO generated_files (organization_id, project_id, path, content, type, language,
                             size_bytes, line_count, sha256)
SELECT %(organization)s, %(project)s, s.path, s.content, s.type, s.language, s.size_bytes,
       s.line_count, s.sha256
FROM staged_generated_files s
WHERE NOT EXISTS (SELECT 1 FROM generated_files f
                  WHERE f.project_id = %(project)s AND f.path = s.path)
ORDER BY s.path
RETURNING path
"""


def merge(
    conn: Connection, project: dict[str, Any], files: Iterable[GeneratedFile]
) -> dict[str, list[str]]:
    """Bring the project's generated files in line with ``files``: COPY into a staging table,
    then one statement each for changed and new files. Stored files missing from ``files``
    are kept. ``files`` may be a generator reading the tree: each file is sent as it is read.
    Returns the paths by outcome: added, changed, unchanged."""
    conn.execute(_STAGE)
    paths: list[str] = []
    copy_rows(conn, _COPY, _rows(files, paths))
    ids = {"project": project["id"], "organization": project["organization_id"]}
    changed = [row["path"] for row in conn.execute(_UPDATE_CHANGED, ids).fetchall()]
    added = [row["path"] for row in conn.execute(_INSERT_NEW, ids).fetchall()]
    touched = set(changed) | set(added)
    unchanged = [path for path in paths if path not in touched]
    return {"added": added, "changed": changed, "unchanged": unchanged}


def _rows(files: Iterable[GeneratedFile], paths: list[str]) -> Iterator[tuple[Any, ...]]:
    """The COPY rows of ``files``, noting each one's path in ``paths`` as it goes."""
    for f in files:
        paths.append(f.path)
        yield (f.path, f.content, f.type, f.language, f.size_bytes, f.line_count, f.sha256)


def list_visible(
    conn: Connection, *, project_id: UUID | None, file_type: str | None
) -> list[dict[str, Any]]:
    """Every generated file the caller can see, optionally of one project and of one type."""
    return conn.execute(
        """
        SELECT id, project_id, path, type::text AS type, language::text AS language,
               line_count AS lines, size_bytes, sha256, updated_at
        FROM generated_files
        WHERE (%(project)s::uuid IS NULL OR project_id = %(project)s)
          AND (%(type)s::generated_file_type IS NULL OR type = %(type)s)
        ORDER BY project_id, path
        """,
        {"project": project_id, "type": file_type},
    ).fetchall()


def get(conn: Connection, project_id: UUID, path: str) -> dict[str, Any]:
    return one(
        conn,
        "SELECT id, path, type::text AS type, language::text AS language, content"
        " FROM generated_files WHERE project_id = %s AND path = %s",
        (project_id, path),
        missing=f"no generated file {path!r} in this project; see `migrationpilot generated list`",
    )


def contents(conn: Connection, project_id: UUID) -> list[dict[str, Any]]:
    """Path and content of every generated file of the project, for an export."""
    return conn.execute(
        "SELECT path, content FROM generated_files WHERE project_id = %s ORDER BY path",
        (project_id,),
    ).fetchall()
