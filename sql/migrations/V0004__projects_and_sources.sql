-- V0004: projects and their uploaded legacy source files.
--
-- Tenant consistency pattern used from here on: every tenant-owned row
-- carries organization_id, and its reference to a parent INCLUDES
-- organization_id (composite foreign key to the parent's UNIQUE
-- (organization_id, id)). The database, not the application, then
-- guarantees that a child's organization_id equals its parent's, which is
-- what makes the simple per-table RLS filter on organization_id sound.

-- ---------------------------------------------------------------------------
-- projects
-- ---------------------------------------------------------------------------
CREATE TABLE projects (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text            NOT NULL,
    description       text,
    organization_id   bigint          NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    source_language   source_language NOT NULL,
    target_language   target_language NOT NULL,
    -- Free text (spring-boot, fastapi, ...): frameworks change too fast for an enum.
    target_framework  text,
    status            project_status  NOT NULL DEFAULT 'draft',
    settings          jsonb           NOT NULL DEFAULT '{}',
    -- Cached analysis figures (file counts, LOC, ...); recomputable, so jsonb.
    statistics        jsonb           NOT NULL DEFAULT '{}',
    created_by        bigint,
    created_at        timestamptz     NOT NULL DEFAULT now(),
    updated_at        timestamptz     NOT NULL DEFAULT now(),

    CONSTRAINT projects_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT projects_settings_is_object CHECK (jsonb_typeof(settings) = 'object'),
    CONSTRAINT projects_statistics_is_object CHECK (jsonb_typeof(statistics) = 'object'),
    -- Names are what users type; unique per organization only.
    -- This index also serves projects(organization_id) lookups and the
    -- organizations FK, so no separate projects(organization_id) index.
    CONSTRAINT projects_organization_id_name_key UNIQUE (organization_id, name),
    -- Target of composite FKs from project children.
    CONSTRAINT projects_organization_id_id_key UNIQUE (organization_id, id),
    -- The creator must be a user of the same organization. When that user is
    -- deleted only created_by is nulled (column-list SET NULL, PG15+); a
    -- plain SET NULL would also null organization_id and fail NOT NULL.
    CONSTRAINT projects_created_by_fkey
        FOREIGN KEY (organization_id, created_by)
        REFERENCES users (organization_id, id)
        ON DELETE SET NULL (created_by)
);

-- FK index for projects_created_by_fkey (user deletion).
CREATE INDEX projects_organization_id_created_by_idx ON projects (organization_id, created_by);

CREATE TRIGGER projects_set_updated_at
    BEFORE UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------
-- source_files: the legacy code as uploaded, one row per file.
-- ---------------------------------------------------------------------------
CREATE TABLE source_files (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint           NOT NULL,
    project_id       bigint           NOT NULL,
    -- Relative to the project root, '/' separated, as shown to users.
    path             text             NOT NULL,
    -- Decoded text. The original bytes' encoding is recorded in `encoding`
    -- (EBCDIC code pages are common for COBOL).
    content          text             NOT NULL,
    language         source_file_kind NOT NULL,
    encoding         text             NOT NULL DEFAULT 'utf-8',
    -- Size and hash of the ORIGINAL file bytes, supplied by the client; they
    -- cannot be derived from `content` once it has been decoded.
    size_bytes       bigint           NOT NULL,
    sha256           text             NOT NULL,
    line_count       int              NOT NULL DEFAULT 0,
    code_lines       int              NOT NULL DEFAULT 0,
    comment_lines    int              NOT NULL DEFAULT 0,
    blank_lines      int              NOT NULL DEFAULT 0,
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now(),

    -- Path rules: stored paths are later joined to output directories, so
    -- absolute paths, backslashes and '..' segments (path traversal) are
    -- refused at the source. chr(92) is a backslash, written this way so the
    -- check does not depend on standard_conforming_strings.
    CONSTRAINT source_files_path_not_empty CHECK (path <> ''),
    CONSTRAINT source_files_path_relative CHECK (NOT starts_with(path, '/')),
    CONSTRAINT source_files_path_no_backslash CHECK (strpos(path, chr(92)) = 0),
    CONSTRAINT source_files_path_no_dotdot CHECK (path !~ '(^|/)\.\.(/|$)'),
    CONSTRAINT source_files_encoding_not_blank CHECK (btrim(encoding) <> ''),
    CONSTRAINT source_files_size_bytes_check CHECK (size_bytes >= 0),
    -- Lower-case hex only, so equality comparisons between hashes just work.
    CONSTRAINT source_files_sha256_format CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT source_files_line_count_check CHECK (line_count >= 0),
    CONSTRAINT source_files_code_lines_check CHECK (code_lines >= 0),
    CONSTRAINT source_files_comment_lines_check CHECK (comment_lines >= 0),
    CONSTRAINT source_files_blank_lines_check CHECK (blank_lines >= 0),

    -- One row per path per project (re-upload = upsert ON CONFLICT (project_id, path)).
    -- Its leading column also covers source_files(project_id) lookups, so
    -- there is deliberately no separate index on project_id.
    CONSTRAINT source_files_project_id_path_key UNIQUE (project_id, path),
    -- The file's organization must be its project's organization.
    CONSTRAINT source_files_project_fkey
        FOREIGN KEY (organization_id, project_id)
        REFERENCES projects (organization_id, id)
        ON DELETE CASCADE
);

-- FK index for source_files_project_fkey: project deletion cascades look up
-- (organization_id, project_id); the unique index above leads with
-- project_id only, so it does not cover both FK columns.
CREATE INDEX source_files_organization_id_project_id_idx ON source_files (organization_id, project_id);

CREATE TRIGGER source_files_set_updated_at
    BEFORE UPDATE ON source_files
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
