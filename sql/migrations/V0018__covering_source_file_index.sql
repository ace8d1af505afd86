-- migrationpilot: no-transaction
-- V0018: a project's files are read from one index, never from the table (issue 7).
--
-- `files list -p P` and the files half of `projects show P` read every file row of a project:
-- path, language, line counts, size, encoding, checksum. Each row also holds the file's text
-- (kilobytes, compressed inline), so a row takes most of a heap page and reading 911 files read
-- 880 pages at SCALE=large (3.2 ms); the dashboard read them three times. The (project_id,
-- path) index of V0014 now carries those columns, so both are index-only scans: 32 pages,
-- 0.26 ms. organization_id rides along so that row level security's filter is checked from
-- the index too. The index stays the one the merge statements of `files import` and the
-- source lookups of `rules import` use, by (project_id, path).
--
-- (organization_id, project_id) of V0004 goes: the unique (organization_id, project_id, path)
-- key of V0014/V0015 starts with the same columns and serves the foreign key's cascade as well.
--
-- Outside a transaction, with CONCURRENTLY, so that a live database keeps taking writes while
-- the index builds. Each statement is idempotent: a run that fails midway is simply run again.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction

CREATE INDEX CONCURRENTLY IF NOT EXISTS source_files_project_id_path_covering_idx
    ON source_files (project_id, path)
    INCLUDE (organization_id, id, language, line_count, code_lines, comment_lines, blank_lines,
             size_bytes, encoding, sha256, updated_at);
DROP INDEX CONCURRENTLY IF EXISTS source_files_project_id_path_idx;
DROP INDEX CONCURRENTLY IF EXISTS source_files_organization_id_project_id_idx;
