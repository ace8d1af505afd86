-- V0004: projects, their uploaded legacy source files, the project status workflow and the
-- tenant limits on both.
--
-- Tenant consistency pattern used from here on: every tenant-owned row carries
-- organization_id, and its reference to a parent INCLUDES organization_id (composite
-- foreign key to the parent's UNIQUE (organization_id, id)). The database, not the
-- application, then guarantees that a child's organization_id equals its parent's, which
-- is what makes the simple per-table RLS filter on organization_id sound. The design's
-- applications do not know organization_id on children: when an insert leaves it out, a
-- BEFORE INSERT trigger takes it from the parent row (rule -> project -> organization), and
-- a value that disagrees with the parent is still refused by the composite foreign key.

-- ---------------------------------------------------------------------------
-- projects
-- ---------------------------------------------------------------------------
CREATE TABLE projects (
    id                uuid            PRIMARY KEY DEFAULT gen_random_uuid(),
    name              varchar(255)    NOT NULL,
    description       text,
    -- NOT NULL, filled when omitted (projects_fill_organization).
    organization_id   uuid            NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    source_language   source_language NOT NULL,
    target_language   target_language NOT NULL,
    -- Free text (spring-boot, fastapi, ...): frameworks change too fast for an enum.
    target_framework  varchar(100),
    status            project_status  NOT NULL DEFAULT 'draft',
    settings          jsonb           NOT NULL DEFAULT '{}',
    -- Cached analysis figures (file counts, LOC, ...); recomputable, so jsonb.
    statistics        jsonb           NOT NULL DEFAULT '{}',
    created_by        uuid,
    created_at        timestamptz     NOT NULL DEFAULT now(),
    updated_at        timestamptz     NOT NULL DEFAULT now(),
    -- Ours: where a failed project failed from, the one state besides draft it
    -- may return to. Set and cleared only by the workflow trigger below.
    failed_from       project_status,

    CONSTRAINT projects_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT projects_settings_is_object CHECK (jsonb_typeof(settings) = 'object'),
    CONSTRAINT projects_statistics_is_object CHECK (jsonb_typeof(statistics) = 'object'),
    CONSTRAINT projects_failed_from_check CHECK ((status = 'failed') = (failed_from IS NOT NULL)),
    -- Names are what users type; unique per organization only.
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

-- FK index for projects_created_by_fkey (user deletion), partial: SET NULL looks up
-- only users that created something.
CREATE INDEX projects_organization_id_created_by_idx
    ON projects (organization_id, created_by) WHERE created_by IS NOT NULL;

CREATE TRIGGER projects_set_updated_at
    BEFORE UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A project without organization_id: the acting user's organization, else its
-- creator's, else the only organization. Definer rights for the creator's
-- organization (users past RLS); the composite FK still checks the result.
CREATE FUNCTION projects_fill_organization() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
BEGIN
    NEW.organization_id := coalesce(
        public.current_organization_id(),
        (SELECT u.organization_id FROM public.users AS u WHERE u.id = NEW.created_by),
        public.only_candidate(
            'projects', 'organization_id',
            ARRAY(SELECT o.id FROM public.organizations AS o LIMIT 2)));
    RETURN NEW;
END
$$;

CREATE TRIGGER projects_fill_organization
    BEFORE INSERT ON projects
    FOR EACH ROW
    WHEN (NEW.organization_id IS NULL)
    EXECUTE FUNCTION projects_fill_organization();

-- The organization of a project child whose insert left organization_id out:
-- its project's, read with the caller's rights, so that a project out of sight
-- (another organization's, under row level security) is "no project".
CREATE FUNCTION organization_of_project(table_name text, project uuid) RETURNS uuid
    LANGUAGE plpgsql
    STABLE
AS $$
DECLARE
    organization uuid;
BEGIN
    SELECT p.organization_id INTO organization FROM public.projects AS p WHERE p.id = project;
    IF organization IS NULL AND project IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'foreign_key_violation',
            MESSAGE = pg_catalog.format('%s.project_id: no project %s', table_name, project);
    END IF;
    RETURN organization;
END
$$;

-- Size and sha256 (lower-case hex) of a text's UTF-8 bytes: what a file row
-- records when the client did not give the original bytes' figures.
CREATE FUNCTION utf8_size(content text) RETURNS bigint
    LANGUAGE sql
    IMMUTABLE
    PARALLEL SAFE
AS $$
    SELECT pg_catalog.octet_length(pg_catalog.convert_to(content, 'UTF8'))::bigint
$$;

CREATE FUNCTION utf8_sha256(content text) RETURNS text
    LANGUAGE sql
    IMMUTABLE
    PARALLEL SAFE
AS $$
    SELECT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(content, 'UTF8')), 'hex')
$$;

-- ---------------------------------------------------------------------------
-- source_files: the legacy code as uploaded, one row per file.
-- The design draws id, project_id, path, content, language; the rest is ours.
-- ---------------------------------------------------------------------------
CREATE TABLE source_files (
    id               uuid             PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id       uuid             NOT NULL,
    -- Relative to the project root, '/' separated, as shown to users.
    path             varchar(500)     NOT NULL,
    -- Decoded text. The original bytes' encoding is recorded in `encoding`
    -- (EBCDIC code pages are common for COBOL).
    content          text             NOT NULL,
    -- The design's varchar(50), as our enum of file kinds (a COBOL project has
    -- copybooks and JCL, parsed differently); the project's language when omitted.
    language         source_file_kind NOT NULL,
    organization_id  uuid             NOT NULL,
    encoding         text             NOT NULL DEFAULT 'utf-8',
    -- Size and hash of the ORIGINAL file bytes, given by the CLI (they cannot be
    -- derived from `content` once decoded); computed from the UTF-8 content when
    -- an insert omits them, as are the line counts (source_files_fill).
    size_bytes       bigint           NOT NULL,
    sha256           text             NOT NULL,
    line_count       integer          NOT NULL,
    code_lines       integer          NOT NULL,
    comment_lines    integer          NOT NULL,
    blank_lines      integer          NOT NULL,
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

    -- One row per path per project (re-upload = upsert). organization_id leads:
    -- a duplicate key can then only be met within one's own organization, so it
    -- never reveals another organization's files (row level security lets a
    -- user name any project_id; the composite FK refuses it only afterwards).
    -- Its prefix also serves the project foreign key's cascade.
    CONSTRAINT source_files_organization_id_project_id_path_key
        UNIQUE (organization_id, project_id, path),
    -- The file's organization must be its project's organization.
    CONSTRAINT source_files_project_fkey
        FOREIGN KEY (organization_id, project_id)
        REFERENCES projects (organization_id, id)
        ON DELETE CASCADE
);

CREATE TRIGGER source_files_set_updated_at
    BEFORE UPDATE ON source_files
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Lines of a text as the CLI counts them: a last line without a newline counts.
CREATE FUNCTION text_line_count(content text) RETURNS integer
    LANGUAGE sql
    IMMUTABLE
    PARALLEL SAFE
AS $$
    SELECT CASE WHEN content = '' THEN 0
                ELSE pg_catalog.length(content)
                     - pg_catalog.length(pg_catalog.replace(content, E'\n', ''))
                     + (pg_catalog."right"(content, 1) <> E'\n')::int
           END
$$;

-- What a design-valid insert leaves out: the organization (from the project,
-- read with the caller's rights, so a project out of sight is "no project"),
-- the kind (from the project's language), size and hash of the UTF-8 content,
-- and line counts. The CLI's importer classifies comment lines per language;
-- here every non-blank line counts as code. The counts feed the tenant's
-- max_lines_of_code, so they are never left at zero for another client.
CREATE FUNCTION source_files_fill() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.organization_id := coalesce(NEW.organization_id,
                                    public.organization_of_project('source_files', NEW.project_id));
    IF NEW.language IS NULL THEN
        NEW.language := (SELECT CASE p.source_language WHEN 'java-legacy' THEN 'java'
                                     ELSE p.source_language::text END::public.source_file_kind
                           FROM public.projects AS p WHERE p.id = NEW.project_id);
    END IF;
    NEW.size_bytes := coalesce(NEW.size_bytes, public.utf8_size(NEW.content));
    NEW.sha256 := coalesce(NEW.sha256, public.utf8_sha256(NEW.content));
    NEW.line_count := coalesce(NEW.line_count, public.text_line_count(NEW.content));
    NEW.blank_lines := coalesce(NEW.blank_lines,
        (SELECT pg_catalog.count(*)::int
           FROM pg_catalog.regexp_split_to_table(pg_catalog.rtrim(NEW.content, E'\n'), E'\n') AS line
          WHERE NEW.content <> '' AND pg_catalog.btrim(line, E' \t\r\f') = ''));
    NEW.comment_lines := coalesce(NEW.comment_lines, 0);
    NEW.code_lines := coalesce(NEW.code_lines,
                               NEW.line_count - NEW.blank_lines - NEW.comment_lines);
    RETURN NEW;
END
$$;

CREATE TRIGGER source_files_fill
    BEFORE INSERT ON source_files
    FOR EACH ROW
    WHEN (NEW.organization_id IS NULL OR NEW.language IS NULL OR NEW.size_bytes IS NULL
          OR NEW.sha256 IS NULL OR NEW.line_count IS NULL OR NEW.code_lines IS NULL
          OR NEW.comment_lines IS NULL OR NEW.blank_lines IS NULL)
    EXECUTE FUNCTION source_files_fill();

-- ===========================================================================
-- Project status workflow
-- ===========================================================================
--
-- Both the workflow and the tenant limits are rules the CLI also knows about,
-- but they live here so that no client can skip them: not psql, not a DBA
-- script, not a second tool.
--
--        draft -> analyzing -> analysis_complete -> designing -> design_complete
--          -> generating -> generation_complete -> validating
--          -> validation_complete -> completed
--    Any state may move to failed; a failed project may move back to the state
--    it failed from (projects.failed_from, kept by the trigger) or to draft.
--    A new project starts as draft.
--
-- Every error is SQLSTATE 23514 (check_violation) with a constraint name the
-- CLI can map to a message: project_status_workflow, tenant_max_projects,
-- tenant_max_lines_of_code.

-- The transition table, in one place: the trigger checks against it and the
-- CLI calls it to offer the valid next states. The next forward state comes
-- first, then failed; a failed project offers its failed_from state, then draft.
-- IMMUTABLE: the answer depends on the arguments only. A new project_status
-- label needs a new branch here (it would otherwise allow no move at all).
CREATE FUNCTION project_allowed_transitions(current project_status, failed_from project_status)
    RETURNS project_status[]
    LANGUAGE sql
    IMMUTABLE
    PARALLEL SAFE
AS $$
    SELECT CASE project_allowed_transitions.current
               WHEN 'draft'               THEN '{analyzing,failed}'::public.project_status[]
               WHEN 'analyzing'           THEN '{analysis_complete,failed}'
               WHEN 'analysis_complete'   THEN '{designing,failed}'
               WHEN 'designing'           THEN '{design_complete,failed}'
               WHEN 'design_complete'     THEN '{generating,failed}'
               WHEN 'generating'          THEN '{generation_complete,failed}'
               WHEN 'generation_complete' THEN '{validating,failed}'
               WHEN 'validating'          THEN '{validation_complete,failed}'
               WHEN 'validation_complete' THEN '{completed,failed}'
               WHEN 'completed'           THEN '{failed}'
               WHEN 'failed' THEN
                   CASE
                       WHEN project_allowed_transitions.failed_from IS NULL
                         OR project_allowed_transitions.failed_from = 'draft'
                           THEN '{draft}'
                       ELSE ARRAY[project_allowed_transitions.failed_from,
                                  'draft'::public.project_status]
                   END
           END
$$;

COMMENT ON FUNCTION project_allowed_transitions(project_status, project_status) IS
    'States a project in status `current` (with failed_from, when failed) may move to next.';

-- BEFORE INSERT: a project starts as draft.
-- BEFORE UPDATE (only when status or failed_from changes, see the WHEN
-- clauses): refuse a move the workflow does not allow, then set failed_from
-- (the old status when moving to failed, NULL otherwise).
-- failed_from belongs to this trigger. A client that writes back the value
-- the trigger would set anyway (a whole-row UPDATE) is fine; any other value
-- is refused rather than silently replaced, so a mistaken script is told.
-- Setting status to its current value (failed -> failed) is no change and
-- passes untouched.
-- Runs with the caller's rights: it reads nothing but the row itself.
CREATE FUNCTION projects_enforce_status_workflow() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    allowed          public.project_status[];
    next_failed_from public.project_status;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- A NULL status falls through to the NOT NULL constraint.
        IF NEW.status <> 'draft' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                CONSTRAINT = 'project_status_workflow',
                MESSAGE = pg_catalog.format('new project %L must start as draft, not %s',
                                            NEW.name, NEW.status),
                DETAIL = 'allowed initial states: draft',
                HINT = 'Create the project as draft, then move it through the workflow.';
        END IF;
        RETURN NEW;
    END IF;

    IF NEW.status IS DISTINCT FROM OLD.status THEN
        allowed := public.project_allowed_transitions(OLD.status, OLD.failed_from);
        -- A NULL status falls through to the NOT NULL constraint.
        IF NOT (NEW.status = ANY (allowed)) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                CONSTRAINT = 'project_status_workflow',
                MESSAGE = pg_catalog.format('project %s cannot move from %s to %s',
                                            OLD.id, OLD.status, NEW.status),
                DETAIL = pg_catalog.format('allowed next states: %s',
                                           pg_catalog.array_to_string(allowed, ', '));
        END IF;
        next_failed_from := CASE WHEN NEW.status = 'failed' THEN OLD.status END;
    ELSE
        next_failed_from := OLD.failed_from;
    END IF;

    IF NEW.failed_from IS DISTINCT FROM OLD.failed_from
       AND NEW.failed_from IS DISTINCT FROM next_failed_from THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'project_status_workflow',
            MESSAGE = pg_catalog.format('project %s: failed_from is set by the status workflow, not by hand',
                                        OLD.id),
            HINT = 'Change status instead: moving to failed records the state it failed from.';
    END IF;
    NEW.failed_from := next_failed_from;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION projects_enforce_status_workflow() IS
    'Trigger: new projects start as draft; status moves only as project_allowed_transitions() allows; keeps failed_from.';

CREATE TRIGGER projects_status_workflow_insert
    BEFORE INSERT ON projects
    FOR EACH ROW
    WHEN (NEW.status <> 'draft')
    EXECUTE FUNCTION projects_enforce_status_workflow();

-- No column list (UPDATE OF status): the WHEN clause sees the final row, so
-- a change made by any other BEFORE trigger is checked as well.
CREATE TRIGGER projects_status_workflow_update
    BEFORE UPDATE ON projects
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status
          OR NEW.failed_from IS DISTINCT FROM OLD.failed_from)
    EXECUTE FUNCTION projects_enforce_status_workflow();

-- ===========================================================================
-- 2. Tenant limits
-- ===========================================================================
--
-- How a check works (both limits, same shape):
--   * Statement level, AFTER, with transition tables: one check per statement
--     however many rows it writes (a bulk import of 10,000 files is one sum,
--     not 10,000), and the check sees the statement's own rows.
--   * It first computes, from the transition tables alone, how much each
--     tenant touched by the statement GROWS. Tenants that do not grow are not
--     checked: deleting or shrinking never exceeds a limit, and a tenant
--     whose limit was lowered below its current use (allowed, see below) can
--     still edit and delete, just not grow.
--   * Then, for each growing tenant in tenant id order (a fixed order, so
--     two statements touching the same tenants cannot deadlock on them), it
--     locks the tenants row FOR NO KEY UPDATE. That serializes concurrent
--     writers of one tenant: the second waits here until the first commits or
--     rolls back. In READ COMMITTED (PostgreSQL's default and the CLI's) the
--     count/sum that follows is a new statement with a new snapshot, so it
--     sees what the first transaction committed and the second one fails:
--     two transactions cannot both squeeze past a limit.
--     NO KEY UPDATE rather than UPDATE: it conflicts with itself and with
--     UPDATEs of tenants (a limit being changed), but not with the KEY SHARE
--     locks that foreign-key checks take, so creating an organization of the
--     tenant does not queue behind a running import.
--     Under SERIALIZABLE the same race ends in a serialization failure for
--     one of the two (retry). REPEATABLE READ counts with the transaction's
--     own snapshot and is NOT protected; write to these tables in READ
--     COMMITTED or SERIALIZABLE.
--   * AFTER rather than BEFORE: by then row level security has checked every
--     row (the app role can only have written its own organization's rows),
--     so a refused write never reveals another tenant's usage, and a user
--     cannot make the trigger lock another tenant's row.
--   * SECURITY DEFINER (runs as the owner, whom RLS does not filter): the
--     acting app role sees only its own organization and its own tenants row,
--     but the limit counts all organizations of the tenant and the lock needs
--     the tenants row. Pinned search_path, no dynamic SQL, no arguments, all
--     tables schema-qualified. The transition tables are statement-local
--     names and need no schema.
--
-- Lowering a limit below current use (UPDATE tenants SET max_projects = ...)
-- is allowed on purpose: an operator downgrading a plan must not have to
-- delete data first. It only blocks further growth.
--
-- Not checked: moving an organization to another tenant
-- (UPDATE organizations SET tenant_id), an operator-only action.

-- ---------------------------------------------------------------------------
-- max_projects: the number of projects across all organizations of a tenant.
-- INSERT, and UPDATE (a project moved into an organization of another tenant
-- counts as one more there).
-- ---------------------------------------------------------------------------
CREATE FUNCTION projects_enforce_tenant_max_projects() RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    tenant_ids uuid[];
    added      bigint[];
    tenant     record;
    total      bigint;
BEGIN
    -- Growth per tenant, from this statement's rows only. The two branches
    -- are separate statements because old_projects exists only for UPDATE.
    IF TG_OP = 'INSERT' THEN
        SELECT pg_catalog.array_agg(g.tenant_id), pg_catalog.array_agg(g.growth)
          INTO tenant_ids, added
          FROM (SELECT o.tenant_id, pg_catalog.count(*) AS growth
                  FROM new_projects AS p
                  JOIN public.organizations AS o ON o.id = p.organization_id
                 GROUP BY o.tenant_id) AS g;
    ELSE
        SELECT pg_catalog.array_agg(g.tenant_id), pg_catalog.array_agg(g.growth)
          INTO tenant_ids, added
          FROM (SELECT o.tenant_id, pg_catalog.sum(d.n)::bigint AS growth
                  FROM (SELECT organization_id, 1 AS n FROM new_projects
                        UNION ALL
                        SELECT organization_id, -1 FROM old_projects) AS d
                  JOIN public.organizations AS o ON o.id = d.organization_id
                 GROUP BY o.tenant_id
                HAVING pg_catalog.sum(d.n) > 0) AS g;
    END IF;

    -- unnest() of several arrays is FROM-clause syntax that cannot be
    -- schema-qualified; the pinned search_path resolves it to pg_catalog.
    FOR tenant IN
        SELECT t.id, t.slug, t.max_projects, a.growth
          FROM public.tenants AS t
          JOIN unnest(tenant_ids, added) AS a (tenant_id, growth)
            ON a.tenant_id = t.id
         ORDER BY t.id
           FOR NO KEY UPDATE OF t
    LOOP
        -- A new statement, so (in READ COMMITTED) a new snapshot taken after
        -- the lock: it sees every committed project plus this statement's.
        SELECT pg_catalog.count(*)
          INTO total
          FROM public.projects AS p
          JOIN public.organizations AS o ON o.id = p.organization_id
         WHERE o.tenant_id = tenant.id;
        IF total > tenant.max_projects THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                CONSTRAINT = 'tenant_max_projects',
                MESSAGE = pg_catalog.format(
                    'tenant %s: project limit reached (max_projects %s, %s in use, creating %s more)',
                    tenant.slug, tenant.max_projects, total - tenant.growth, tenant.growth),
                DETAIL = 'The limit counts the projects of every organization of the tenant.',
                HINT = 'Delete projects that are no longer needed, or raise the tenant''s max_projects.';
        END IF;
    END LOOP;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

COMMENT ON FUNCTION projects_enforce_tenant_max_projects() IS
    'Statement trigger: refuses projects beyond tenants.max_projects, counted over all organizations of the tenant.';

CREATE TRIGGER projects_tenant_max_projects_insert
    AFTER INSERT ON projects
    REFERENCING NEW TABLE AS new_projects
    FOR EACH STATEMENT
    EXECUTE FUNCTION projects_enforce_tenant_max_projects();

-- A trigger with transition tables may have only one event, hence two.
CREATE TRIGGER projects_tenant_max_projects_update
    AFTER UPDATE ON projects
    REFERENCING OLD TABLE AS old_projects NEW TABLE AS new_projects
    FOR EACH STATEMENT
    EXECUTE FUNCTION projects_enforce_tenant_max_projects();

-- ---------------------------------------------------------------------------
-- max_lines_of_code: sum of source_files.line_count across all organizations
-- of a tenant. INSERT, and UPDATE (a larger line_count, or a file moved into
-- another tenant). Per-row checks would re-sum the tenant for every row of a
-- bulk import (quadratic); per statement it is one sum.
-- ---------------------------------------------------------------------------
CREATE FUNCTION source_files_enforce_tenant_max_lines() RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    tenant_ids uuid[];
    added      bigint[];
    tenant     record;
    total      bigint;
BEGIN
    -- Growth per tenant, from this statement's rows only (see above).
    IF TG_OP = 'INSERT' THEN
        SELECT pg_catalog.array_agg(g.tenant_id), pg_catalog.array_agg(g.growth)
          INTO tenant_ids, added
          FROM (SELECT o.tenant_id, pg_catalog.sum(f.line_count)::bigint AS growth
                  FROM new_files AS f
                  JOIN public.organizations AS o ON o.id = f.organization_id
                 GROUP BY o.tenant_id
                HAVING pg_catalog.sum(f.line_count) > 0) AS g;
    ELSE
        SELECT pg_catalog.array_agg(g.tenant_id), pg_catalog.array_agg(g.growth)
          INTO tenant_ids, added
          FROM (SELECT o.tenant_id, pg_catalog.sum(d.lines)::bigint AS growth
                  FROM (SELECT organization_id, line_count::bigint AS lines FROM new_files
                        UNION ALL
                        SELECT organization_id, -line_count::bigint FROM old_files) AS d
                  JOIN public.organizations AS o ON o.id = d.organization_id
                 GROUP BY o.tenant_id
                HAVING pg_catalog.sum(d.lines) > 0) AS g;
    END IF;

    FOR tenant IN
        SELECT t.id, t.slug, t.max_lines_of_code, a.growth
          FROM public.tenants AS t
          JOIN unnest(tenant_ids, added) AS a (tenant_id, growth)
            ON a.tenant_id = t.id
         ORDER BY t.id
           FOR NO KEY UPDATE OF t
    LOOP
        -- New statement, new snapshot after the lock (see above).
        SELECT COALESCE(pg_catalog.sum(f.line_count), 0)
          INTO total
          FROM public.source_files AS f
          JOIN public.organizations AS o ON o.id = f.organization_id
         WHERE o.tenant_id = tenant.id;
        IF total > tenant.max_lines_of_code THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                CONSTRAINT = 'tenant_max_lines_of_code',
                MESSAGE = pg_catalog.format(
                    'tenant %s: source line limit exceeded (max_lines_of_code %s, %s stored, this change adds %s)',
                    tenant.slug, tenant.max_lines_of_code, total - tenant.growth, tenant.growth),
                DETAIL = 'The limit counts the source lines of every organization of the tenant.',
                HINT = 'Delete source files that are no longer needed, or raise the tenant''s max_lines_of_code.';
        END IF;
    END LOOP;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

COMMENT ON FUNCTION source_files_enforce_tenant_max_lines() IS
    'Statement trigger: refuses source lines beyond tenants.max_lines_of_code, summed over all organizations of the tenant.';

CREATE TRIGGER source_files_tenant_max_lines_insert
    AFTER INSERT ON source_files
    REFERENCING NEW TABLE AS new_files
    FOR EACH STATEMENT
    EXECUTE FUNCTION source_files_enforce_tenant_max_lines();

CREATE TRIGGER source_files_tenant_max_lines_update
    AFTER UPDATE ON source_files
    REFERENCING OLD TABLE AS old_files NEW TABLE AS new_files
    FOR EACH STATEMENT
    EXECUTE FUNCTION source_files_enforce_tenant_max_lines();

