-- V0005: business rules extracted from legacy code, and their version history.

-- ---------------------------------------------------------------------------
-- business_rules
-- ---------------------------------------------------------------------------
CREATE TABLE business_rules (
    id                 uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id         uuid          NOT NULL,
    name               varchar(255)  NOT NULL,
    description        text          NOT NULL,
    category           rule_category NOT NULL,
    -- Where the rule was found: a path within the project, as text rather
    -- than a FK to source_files, so a rule (and its review history) survives
    -- a source file being re-imported, renamed or removed.
    source_file        varchar(500)  NOT NULL,
    source_start_line  integer       NOT NULL,
    source_end_line    integer       NOT NULL,
    source_code        text          NOT NULL,
    inputs             jsonb         NOT NULL DEFAULT '[]',
    outputs            jsonb         NOT NULL DEFAULT '[]',
    logic              text          NOT NULL,
    formula            text,
    -- Extraction confidence in [0, 1]; three decimals is plenty and keeps
    -- ORDER BY confidence exact (numeric, not float).
    confidence         numeric(4,3)  NOT NULL,
    review_status      review_status NOT NULL DEFAULT 'pending',
    reviewed_by        uuid,
    review_comments    text,
    extracted_at       timestamptz   NOT NULL DEFAULT now(),
    -- Owned by trigger business_rules_version: starts at 1, +1 per real change.
    version            integer       NOT NULL DEFAULT 1,
    -- Ours. organization_id: filled from the project when omitted.
    organization_id    uuid          NOT NULL,
    reviewed_at        timestamptz,
    -- sha256 of the rule's source lines when extracted or last revalidated:
    -- `rules revalidate` compares it with the stored source after a re-import.
    source_hash        text,
    created_at         timestamptz   NOT NULL DEFAULT now(),
    updated_at         timestamptz   NOT NULL DEFAULT now(),

    CONSTRAINT business_rules_name_not_blank CHECK (btrim(name) <> ''),
    -- Same path rules as source_files.path.
    CONSTRAINT business_rules_source_file_path CHECK (
            source_file <> ''
        AND NOT starts_with(source_file, '/')
        AND strpos(source_file, chr(92)) = 0
        AND source_file !~ '(^|/)\.\.(/|$)'
    ),
    -- Lines are 1-based and the range is not reversed.
    CONSTRAINT business_rules_source_lines_check CHECK (
        source_start_line >= 1 AND source_end_line >= source_start_line
    ),
    CONSTRAINT business_rules_inputs_is_array CHECK (jsonb_typeof(inputs) = 'array'),
    CONSTRAINT business_rules_outputs_is_array CHECK (jsonb_typeof(outputs) = 'array'),
    CONSTRAINT business_rules_confidence_check CHECK (confidence BETWEEN 0 AND 1),
    CONSTRAINT business_rules_version_check CHECK (version >= 1),
    CONSTRAINT business_rules_source_hash_format CHECK (source_hash ~ '^[0-9a-f]{64}$'),
    -- What makes an extracted rule the same rule on re-import: its project,
    -- source location and name. organization_id leads, so that a duplicate key
    -- never reveals another organization's rule (see source_files).
    CONSTRAINT business_rules_organization_identity_key
        UNIQUE (organization_id, project_id, source_file, source_start_line, source_end_line, name),

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

-- FK index for business_rules_reviewed_by_fkey (user deletion), partial: the
-- lookups of ON DELETE SET NULL never look for NULL, and an imported rule names
-- no reviewer, so most rows need no entry.
CREATE INDEX business_rules_organization_id_reviewed_by_idx
    ON business_rules (organization_id, reviewed_by) WHERE reviewed_by IS NOT NULL;

CREATE TRIGGER business_rules_set_updated_at
    BEFORE UPDATE ON business_rules
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A rule without organization_id takes its project's (organization_of_project).
CREATE FUNCTION business_rules_fill_organization() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.organization_id := public.organization_of_project('business_rules', NEW.project_id);
    RETURN NEW;
END
$$;

CREATE TRIGGER business_rules_fill_organization
    BEFORE INSERT ON business_rules
    FOR EACH ROW
    WHEN (NEW.organization_id IS NULL)
    EXECUTE FUNCTION business_rules_fill_organization();

-- ---------------------------------------------------------------------------
-- rule_versions: immutable snapshots, one per rule version.
-- ---------------------------------------------------------------------------
CREATE TABLE rule_versions (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    rule_id          uuid        NOT NULL,
    version          integer     NOT NULL,
    -- Full business_rules row as jsonb (to_jsonb(NEW)): self-describing, and
    -- survives later column additions without a schema change here.
    snapshot         jsonb       NOT NULL,
    changed_by       uuid,
    change_reason    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Ours: filled from the version the database wrote (see below).
    organization_id  uuid        NOT NULL,

    CONSTRAINT rule_versions_version_check CHECK (version >= 1),
    CONSTRAINT rule_versions_snapshot_is_object CHECK (jsonb_typeof(snapshot) = 'object'),
    -- One row per version. Leads with the columns of the rule foreign key, so it
    -- is that key's index too; `rules history` finds a rule's versions by rule_id.
    CONSTRAINT rule_versions_rule_id_organization_id_version_key
        UNIQUE (rule_id, organization_id, version),
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

-- FK index of the nullable author, partial (see business_rules above).
CREATE INDEX rule_versions_organization_id_changed_by_idx
    ON rule_versions (organization_id, changed_by) WHERE changed_by IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Versioning triggers. In the database (not the CLI) so that every change,
-- from any client including psql, is versioned.
-- ---------------------------------------------------------------------------

-- BEFORE INSERT OR UPDATE: the version number is owned by the database.
--  * INSERT: always version 1.
--  * UPDATE: +1 when any column other than version/updated_at changed;
--    otherwise the old number is kept (a no-op UPDATE, or a client trying to
--    set version by hand, does not create or skip versions).
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

-- The WHEN clause is evaluated without calling PL/pgSQL: the function runs on
-- INSERT only for the rare client that sends another number than 1.
CREATE TRIGGER business_rules_version_insert
    BEFORE INSERT ON business_rules
    FOR EACH ROW
    WHEN (NEW.version IS DISTINCT FROM 1)
    EXECUTE FUNCTION business_rules_bump_version();

CREATE TRIGGER business_rules_version
    BEFORE UPDATE ON business_rules
    FOR EACH ROW EXECUTE FUNCTION business_rules_bump_version();

-- AFTER INSERT/UPDATE: record the snapshot of every new version.
-- change_reason comes from the optional transaction setting app.change_reason
-- (empty = none); changed_by from app.current_user_id.
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
-- Runs as its owner (SECURITY DEFINER, pinned search_path; that also makes the
-- EXISTS check see past row-level security): the version is the database's
-- record of the change, whoever made it.
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

CREATE TRIGGER business_rules_record_versions_insert
    AFTER INSERT ON business_rules
    REFERENCING NEW TABLE AS new_rules
    FOR EACH STATEMENT EXECUTE FUNCTION business_rules_record_versions();

-- A trigger with transition tables may have only one event, hence two.
CREATE TRIGGER business_rules_record_versions_update
    AFTER UPDATE ON business_rules
    REFERENCING OLD TABLE AS old_rules NEW TABLE AS new_rules
    FOR EACH STATEMENT EXECUTE FUNCTION business_rules_record_versions();

-- ---------------------------------------------------------------------------
-- A version the client writes completes the database's.
--
-- The design's applications change a rule and then insert its rule_versions
-- row themselves (rule_id, version, snapshot, changed_by, change_reason). The
-- database has already written that version, so the client's row is taken as
-- the completion of it: it replaces the database's row of the same rule and
-- version, keeping the database's snapshot (the rule as it really is) and
-- organization, and taking the client's id, changed_by and change_reason where
-- it gives them. History holds one row per version either way.
--
-- A client row for a version the database has not written in the same
-- transaction (a number ahead of the rule, a rule that did not change, or a
-- version recorded earlier) is refused: versions are the record of real changes,
-- a client cannot invent one, and recorded history is never rewritten. Under row
-- level security changed_by can only name the acting user.
--
-- The WHEN clauses keep this off the versioning trigger's own inserts at no PL/pgSQL
-- cost, and ask row_security_active() in the caller's terms (inside the definer
-- function it would answer for the owner): every insert by the app role is checked; the
-- owner's only at the top level, since the versioning trigger's are nested in a trigger
-- (and the owner, who may alter the table, is trusted anyway).
-- ---------------------------------------------------------------------------
CREATE FUNCTION rule_versions_complete() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    written public.rule_versions;
    acting  uuid := public.current_user_id();
    -- 'limited' where row level security applies to the caller (see the triggers): only
    -- the acting user's organization's versions can be completed; without a valid acting
    -- user, none, so the error never tells whether another organization has the version.
    limited boolean := TG_ARGV[0] = 'limited';
BEGIN
    SELECT * INTO written
      FROM public.rule_versions AS v
     WHERE v.rule_id = NEW.rule_id AND v.version = NEW.version
       AND (NOT limited OR v.organization_id = public.current_organization_id())
       -- Written by this transaction (now() is its start): history already recorded by
       -- an earlier transaction is never rewritten.
       AND v.created_at = pg_catalog.now()
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'rule_versions_written_by_the_database',
            MESSAGE = pg_catalog.format('rule %s has no version %s written by this transaction to complete',
                                        NEW.rule_id, NEW.version),
            DETAIL = 'The database writes a version on every change of a rule; a client row completes that version (changed_by, change_reason).',
            HINT = 'Change the rule first, then insert its rule_versions row with the rule''s new version number.';
    END IF;
    IF acting IS NOT NULL AND NEW.changed_by IS DISTINCT FROM acting AND NEW.changed_by IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('rule_versions.changed_by must be the acting user %s', acting);
    END IF;
    DELETE FROM public.rule_versions WHERE id = written.id;
    NEW.organization_id := written.organization_id;
    NEW.snapshot := written.snapshot;
    NEW.created_at := written.created_at;
    NEW.changed_by := coalesce(NEW.changed_by, written.changed_by);
    NEW.change_reason := coalesce(NEW.change_reason, written.change_reason);
    RETURN NEW;
END
$$;

CREATE TRIGGER rule_versions_complete
    BEFORE INSERT ON rule_versions
    FOR EACH ROW
    WHEN (pg_trigger_depth() < 1 AND NOT row_security_active('rule_versions'))
    EXECUTE FUNCTION rule_versions_complete('any organization');

-- Whatever the depth: a client can nest its own insert in a trigger of its own (a
-- temporary table's), so depth proves nothing about who inserts. The versioning
-- trigger's inserts run as the owner (SECURITY DEFINER), where row level security is
-- not active, so none of them comes through here.
CREATE TRIGGER rule_versions_complete_limited
    BEFORE INSERT ON rule_versions
    FOR EACH ROW
    WHEN (row_security_active('rule_versions'))
    EXECUTE FUNCTION rule_versions_complete('limited');
