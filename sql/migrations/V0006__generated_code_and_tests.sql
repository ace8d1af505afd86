-- V0006: generated target code and the test cases derived from business rules.
--
-- The design draws both tables with a handful of columns (id, project_id, path, content,
-- type; id, project_id, rule_id, inputs, expected). What we add (organization, sizes,
-- hashes, a test case's name) is computed or defaulted by the database when an insert
-- omits it, so a design-valid insert just works.

-- ---------------------------------------------------------------------------
-- generated_files
-- ---------------------------------------------------------------------------
CREATE TABLE generated_files (
    id               uuid                PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id       uuid                NOT NULL,
    -- Relative output path; same rules as source_files.path.
    path             varchar(500)        NOT NULL,
    content          text                NOT NULL,
    -- The design's varchar(50), as our enum of what a file is for.
    type             generated_file_type NOT NULL DEFAULT 'source',
    organization_id  uuid                NOT NULL,
    -- Nullable: config and doc files (pom.xml, README.md) have no target language.
    language         target_language,
    -- Optional: the rule this file implements (or tests). Nullable because
    -- scaffolding/config files implement no single rule.
    rule_id          uuid,
    size_bytes       bigint              NOT NULL,
    line_count       integer             NOT NULL,
    sha256           text                NOT NULL,
    created_at       timestamptz         NOT NULL DEFAULT now(),
    updated_at       timestamptz         NOT NULL DEFAULT now(),

    CONSTRAINT generated_files_path_not_empty CHECK (path <> ''),
    CONSTRAINT generated_files_path_relative CHECK (NOT starts_with(path, '/')),
    CONSTRAINT generated_files_path_no_backslash CHECK (strpos(path, chr(92)) = 0),
    CONSTRAINT generated_files_path_no_dotdot CHECK (path !~ '(^|/)\.\.(/|$)'),
    CONSTRAINT generated_files_size_bytes_check CHECK (size_bytes >= 0),
    CONSTRAINT generated_files_line_count_check CHECK (line_count >= 0),
    CONSTRAINT generated_files_sha256_format CHECK (sha256 ~ '^[0-9a-f]{64}$'),

    -- Regeneration overwrites by path; organization_id leads (see source_files).
    CONSTRAINT generated_files_organization_id_project_id_path_key
        UNIQUE (organization_id, project_id, path),
    CONSTRAINT generated_files_project_fkey
        FOREIGN KEY (organization_id, project_id)
        REFERENCES projects (organization_id, id)
        ON DELETE CASCADE,
    -- Rule link: including project_id makes it impossible to link a rule of
    -- another project. Deleting the rule keeps the file and clears only
    -- rule_id (a plain SET NULL would also null organization_id/project_id).
    -- MATCH SIMPLE (default): the FK is not checked while rule_id IS NULL.
    CONSTRAINT generated_files_rule_fkey
        FOREIGN KEY (organization_id, project_id, rule_id)
        REFERENCES business_rules (organization_id, project_id, id)
        ON DELETE SET NULL (rule_id)
);

-- FK index of the rule link (rule deletion); the unique key above serves the project's.
CREATE INDEX generated_files_org_project_rule_idx
    ON generated_files (organization_id, project_id, rule_id) WHERE rule_id IS NOT NULL;

CREATE TRIGGER generated_files_set_updated_at
    BEFORE UPDATE ON generated_files
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The organization from the project (organization_of_project); size, lines and
-- hash from the UTF-8 content.
CREATE FUNCTION generated_files_fill() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.organization_id := coalesce(NEW.organization_id,
                                    public.organization_of_project('generated_files', NEW.project_id));
    NEW.size_bytes := coalesce(NEW.size_bytes, public.utf8_size(NEW.content));
    NEW.sha256 := coalesce(NEW.sha256, public.utf8_sha256(NEW.content));
    NEW.line_count := coalesce(NEW.line_count, public.text_line_count(NEW.content));
    RETURN NEW;
END
$$;

CREATE TRIGGER generated_files_fill
    BEFORE INSERT ON generated_files
    FOR EACH ROW
    WHEN (NEW.organization_id IS NULL OR NEW.size_bytes IS NULL OR NEW.sha256 IS NULL
          OR NEW.line_count IS NULL)
    EXECUTE FUNCTION generated_files_fill();

-- ---------------------------------------------------------------------------
-- test_cases: input/expected-output pairs that validate a rule's migrated
-- implementation against the legacy behaviour.
-- ---------------------------------------------------------------------------
CREATE TABLE test_cases (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NOT NULL, filled from the rule when omitted.
    project_id       uuid        NOT NULL,
    -- A test case tests a rule: it goes with it.
    rule_id          uuid        NOT NULL,
    inputs           jsonb       NOT NULL DEFAULT '{}',
    -- Not constrained to an object: an expected result may be a scalar.
    expected         jsonb       NOT NULL DEFAULT '{}',
    -- Ours. name: 'case-' and the start of the id when omitted.
    organization_id  uuid        NOT NULL,
    name             text        NOT NULL,
    description      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT test_cases_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT test_cases_inputs_is_object CHECK (jsonb_typeof(inputs) = 'object'),
    -- organization_id leads (see source_files); also the index of the rule FK's cascade.
    CONSTRAINT test_cases_organization_id_rule_id_name_key UNIQUE (organization_id, rule_id, name),
    -- Redundant with the rule FK below (a rule's project cascades to the
    -- rule), kept so every project child has the same direct project link.
    CONSTRAINT test_cases_project_fkey
        FOREIGN KEY (organization_id, project_id)
        REFERENCES projects (organization_id, id)
        ON DELETE CASCADE,
    -- A test case belongs to a rule of the same project and goes with it.
    CONSTRAINT test_cases_rule_fkey
        FOREIGN KEY (organization_id, project_id, rule_id)
        REFERENCES business_rules (organization_id, project_id, id)
        ON DELETE CASCADE
);

-- FK index of the project link (project deletion, a project's cases).
CREATE INDEX test_cases_org_project_rule_idx ON test_cases (organization_id, project_id, rule_id);

CREATE TRIGGER test_cases_set_updated_at
    BEFORE UPDATE ON test_cases
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The organization and project from the rule (caller's rights), and a name.
CREATE FUNCTION test_cases_fill() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    rule record;
BEGIN
    IF (NEW.organization_id IS NULL OR NEW.project_id IS NULL) AND NEW.rule_id IS NOT NULL THEN
        SELECT r.organization_id, r.project_id INTO rule
          FROM public.business_rules AS r WHERE r.id = NEW.rule_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING
                ERRCODE = 'foreign_key_violation',
                MESSAGE = pg_catalog.format('test_cases.rule_id: no rule %s', NEW.rule_id);
        END IF;
        NEW.organization_id := coalesce(NEW.organization_id, rule.organization_id);
        NEW.project_id := coalesce(NEW.project_id, rule.project_id);
    END IF;
    NEW.name := coalesce(NEW.name, 'case-' || pg_catalog.left(NEW.id::text, 8));
    RETURN NEW;
END
$$;

CREATE TRIGGER test_cases_fill
    BEFORE INSERT ON test_cases
    FOR EACH ROW
    WHEN (NEW.organization_id IS NULL OR NEW.project_id IS NULL OR NEW.name IS NULL)
    EXECUTE FUNCTION test_cases_fill();
