-- V0005: business rules extracted from legacy code, and their version history.

-- ---------------------------------------------------------------------------
-- business_rules
-- ---------------------------------------------------------------------------
CREATE TABLE business_rules (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id    bigint        NOT NULL,
    project_id         bigint        NOT NULL,
    name               text          NOT NULL,
    description        text,
    category           rule_category NOT NULL,
    -- Where the rule was found: a path within the project, as text rather
    -- than a FK to source_files, so a rule (and its review history) survives
    -- a source file being re-imported, renamed or removed.
    source_file        text,
    source_start_line  int,
    source_end_line    int,
    source_code        text,
    inputs             jsonb         NOT NULL DEFAULT '[]',
    outputs            jsonb         NOT NULL DEFAULT '[]',
    logic              text,
    formula            text,
    -- Extraction confidence in [0, 1]; three decimals is plenty and keeps
    -- ORDER BY confidence exact (numeric, not float).
    confidence         numeric(4,3)  NOT NULL,
    review_status      review_status NOT NULL DEFAULT 'pending',
    reviewed_by        bigint,
    reviewed_at        timestamptz,
    review_comments    text,
    extracted_at       timestamptz   NOT NULL DEFAULT now(),
    -- sha256 of the rule's source lines when extracted or last revalidated:
    -- `rules revalidate` compares it with the stored source after a re-import.
    source_hash        text,
    -- Owned by trigger business_rules_version: starts at 1, +1 per real change.
    version            int           NOT NULL DEFAULT 1,
    created_at         timestamptz   NOT NULL DEFAULT now(),
    updated_at         timestamptz   NOT NULL DEFAULT now(),

    CONSTRAINT business_rules_name_not_blank CHECK (btrim(name) <> ''),
    -- Same path rules as source_files.path, when present.
    CONSTRAINT business_rules_source_file_path CHECK (
        source_file IS NULL
        OR (    source_file <> ''
            AND NOT starts_with(source_file, '/')
            AND strpos(source_file, chr(92)) = 0
            AND source_file !~ '(^|/)\.\.(/|$)')
    ),
    -- A line range is either fully known or absent; lines are 1-based.
    -- The explicit IS NOT NULL tests matter: with only one end set, the
    -- comparisons would be NULL and a CHECK passes on NULL.
    CONSTRAINT business_rules_source_lines_check CHECK (
        (source_start_line IS NULL AND source_end_line IS NULL)
        OR (    source_start_line IS NOT NULL
            AND source_end_line IS NOT NULL
            AND source_start_line >= 1
            AND source_end_line >= source_start_line)
    ),
    CONSTRAINT business_rules_inputs_is_array CHECK (jsonb_typeof(inputs) = 'array'),
    CONSTRAINT business_rules_outputs_is_array CHECK (jsonb_typeof(outputs) = 'array'),
    CONSTRAINT business_rules_confidence_check CHECK (confidence BETWEEN 0 AND 1),
    CONSTRAINT business_rules_version_check CHECK (version >= 1),
    CONSTRAINT business_rules_source_hash_format CHECK (source_hash ~ '^[0-9a-f]{64}$'),
    -- What makes an extracted rule the same rule on re-import: its project,
    -- source location and name. NULLS NOT DISTINCT: a rule without a source
    -- location is still one rule, not a new one on every import.
    CONSTRAINT business_rules_identity_key
        UNIQUE NULLS NOT DISTINCT (project_id, source_file, source_start_line, source_end_line, name),

    -- Composite FK targets: rule_versions refers by (organization_id, id);
    -- generated_files/test_cases by (organization_id, project_id, id) so that
    -- a linked rule is guaranteed to be in the SAME project.
    -- The second one also serves as the index for business_rules_project_fkey.
    CONSTRAINT business_rules_organization_id_id_key UNIQUE (organization_id, id),
    CONSTRAINT business_rules_org_project_id_key UNIQUE (organization_id, project_id, id),

    CONSTRAINT business_rules_project_fkey
        FOREIGN KEY (organization_id, project_id)
        REFERENCES projects (organization_id, id)
        ON DELETE CASCADE,
    -- Reviewer must belong to the same organization; deleting the user keeps
    -- the review outcome and only forgets who did it.
    CONSTRAINT business_rules_reviewed_by_fkey
        FOREIGN KEY (organization_id, reviewed_by)
        REFERENCES users (organization_id, id)
        ON DELETE SET NULL (reviewed_by)
);

-- Review queue: "pending rules of project X".
CREATE INDEX business_rules_project_id_review_status_idx ON business_rules (project_id, review_status);
-- The reviewers' queue, `rules list --pending --min-confidence 0.9`, in index order.
CREATE INDEX business_rules_pending_idx
    ON business_rules (project_id, confidence DESC, id) WHERE review_status = 'pending';
-- "Lowest/highest confidence rules of project X" (review triage).
CREATE INDEX business_rules_project_id_confidence_idx ON business_rules (project_id, confidence DESC);
-- FK index for business_rules_reviewed_by_fkey (user deletion).
CREATE INDEX business_rules_organization_id_reviewed_by_idx ON business_rules (organization_id, reviewed_by);

CREATE TRIGGER business_rules_set_updated_at
    BEFORE UPDATE ON business_rules
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------
-- rule_versions: immutable snapshots, one per rule version.
-- ---------------------------------------------------------------------------
CREATE TABLE rule_versions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint      NOT NULL,
    rule_id          bigint      NOT NULL,
    version          int         NOT NULL,
    -- Full business_rules row as jsonb (to_jsonb(NEW)): self-describing, and
    -- survives later column additions without a schema change here.
    snapshot         jsonb       NOT NULL,
    changed_by       bigint,
    change_reason    text,
    created_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT rule_versions_version_check CHECK (version >= 1),
    CONSTRAINT rule_versions_snapshot_is_object CHECK (jsonb_typeof(snapshot) = 'object'),
    CONSTRAINT rule_versions_rule_id_version_key UNIQUE (rule_id, version),
    -- History goes with its rule (and therefore with its project).
    CONSTRAINT rule_versions_rule_fkey
        FOREIGN KEY (organization_id, rule_id)
        REFERENCES business_rules (organization_id, id)
        ON DELETE CASCADE,
    CONSTRAINT rule_versions_changed_by_fkey
        FOREIGN KEY (organization_id, changed_by)
        REFERENCES users (organization_id, id)
        ON DELETE SET NULL (changed_by)
);

-- FK indexes. (The unique (rule_id, version) leads with rule_id only and so
-- does not cover the two-column rule FK.)
CREATE INDEX rule_versions_organization_id_rule_id_idx ON rule_versions (organization_id, rule_id);
CREATE INDEX rule_versions_organization_id_changed_by_idx ON rule_versions (organization_id, changed_by);

-- ---------------------------------------------------------------------------
-- Versioning triggers. In the database (not the CLI) so that every change,
-- from any client including psql, is versioned.
-- ---------------------------------------------------------------------------

-- BEFORE INSERT OR UPDATE: the version number is owned by the database.
--  * INSERT: always version 1.
--  * UPDATE: +1 when any column other than version/updated_at changed;
--    otherwise the old number is kept (a no-op UPDATE, or a client trying to
--    set version by hand, does not create or skip versions).
-- Comparing jsonb images minus the two bookkeeping keys keeps this correct
-- when columns are added later, without editing the trigger.
CREATE FUNCTION business_rules_bump_version() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    stamped timestamptz := NEW.updated_at;
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.version := 1;
        RETURN NEW;
    END IF;
    -- Compare the whole rows with version and updated_at set aside: a plain row
    -- comparison (every column, NULL-safe, columns added later included) and
    -- several times cheaper than comparing jsonb images of the rows, which
    -- matters when a review batch updates 10,000 rules.
    NEW.version := OLD.version;
    NEW.updated_at := OLD.updated_at;
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.version := OLD.version + 1;
    END IF;
    NEW.updated_at := stamped;
    RETURN NEW;
END
$$;

-- AFTER INSERT/UPDATE: record the snapshot of every new version.
-- Runs with the caller's rights: the app role has INSERT on rule_versions and
-- RLS checks the row lands in the caller's own organization.
-- change_reason comes from the optional session/transaction setting
-- app.change_reason (empty = none); changed_by from app.current_user_id.
--
-- One INSERT ... SELECT per statement (transition tables), not one per row:
-- a review batch of 10,000 rules writes its 10,000 snapshots in one go.
--
-- Rows updated by a cascade can be versioned after the same statement deleted
-- them: deleting an organization or tenant first clears
-- business_rules.reviewed_by (the reviewer's deletion: SET NULL, a new version)
-- and then deletes the rule itself. Nothing is left to version then, hence the
-- EXISTS check.
--
-- Versions are history, so only this trigger writes them: it runs as its owner
-- (SECURITY DEFINER, pinned search_path; that also makes the EXISTS check see
-- past row-level security) and the application role has no INSERT on
-- rule_versions (V0009), so no client can forge a version.
CREATE FUNCTION business_rules_record_versions() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.rule_versions
            (organization_id, rule_id, version, snapshot, changed_by, change_reason)
        SELECT n.organization_id, n.id, n.version, pg_catalog.to_jsonb(n),
               public.current_user_id(),
               NULLIF(pg_catalog.current_setting('app.change_reason', true), '')
        FROM new_rules AS n;
    ELSE
        INSERT INTO public.rule_versions
            (organization_id, rule_id, version, snapshot, changed_by, change_reason)
        SELECT n.organization_id, n.id, n.version, pg_catalog.to_jsonb(n),
               public.current_user_id(),
               NULLIF(pg_catalog.current_setting('app.change_reason', true), '')
        FROM new_rules AS n
        JOIN old_rules AS o ON o.id = n.id
        WHERE n.version IS DISTINCT FROM o.version
          AND EXISTS (SELECT 1 FROM public.business_rules AS r WHERE r.id = n.id);
    END IF;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

CREATE TRIGGER business_rules_version
    BEFORE INSERT OR UPDATE ON business_rules
    FOR EACH ROW EXECUTE FUNCTION business_rules_bump_version();

CREATE TRIGGER business_rules_record_versions_insert
    AFTER INSERT ON business_rules
    REFERENCING NEW TABLE AS new_rules
    FOR EACH STATEMENT EXECUTE FUNCTION business_rules_record_versions();

-- A trigger with transition tables may have only one event, hence two.
CREATE TRIGGER business_rules_record_versions_update
    AFTER UPDATE ON business_rules
    REFERENCING OLD TABLE AS old_rules NEW TABLE AS new_rules
    FOR EACH STATEMENT EXECUTE FUNCTION business_rules_record_versions();
