-- V0006: generated target code and test cases derived from business rules.

-- ---------------------------------------------------------------------------
-- generated_files
-- ---------------------------------------------------------------------------
CREATE TABLE generated_files (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint              NOT NULL,
    project_id       bigint              NOT NULL,
    -- Relative output path; same rules as source_files.path.
    path             text                NOT NULL,
    content          text                NOT NULL,
    type             generated_file_type NOT NULL DEFAULT 'source',
    -- Nullable: config and doc files (pom.xml, README.md) have no target language.
    language         target_language,
    -- Optional: the rule this file implements (or tests). Nullable because
    -- scaffolding/config files implement no single rule.
    rule_id          bigint,
    size_bytes       bigint              NOT NULL,
    line_count       int                 NOT NULL DEFAULT 0,
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

    -- Regeneration overwrites by path (upsert ON CONFLICT (project_id, path)).
    CONSTRAINT generated_files_project_id_path_key UNIQUE (project_id, path),
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

-- One index covers both FKs: (organization_id, project_id) is its prefix.
CREATE INDEX generated_files_org_project_rule_idx ON generated_files (organization_id, project_id, rule_id);

CREATE TRIGGER generated_files_set_updated_at
    BEFORE UPDATE ON generated_files
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------
-- test_cases: input/expected-output pairs that validate a rule's migrated
-- implementation against the legacy behaviour.
-- ---------------------------------------------------------------------------
CREATE TABLE test_cases (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint      NOT NULL,
    project_id       bigint      NOT NULL,
    rule_id          bigint      NOT NULL,
    name             text        NOT NULL,
    description      text,
    inputs           jsonb       NOT NULL DEFAULT '{}',
    -- Not constrained to an object: an expected result may be a scalar.
    expected         jsonb       NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT test_cases_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT test_cases_inputs_is_object CHECK (jsonb_typeof(inputs) = 'object'),
    CONSTRAINT test_cases_rule_id_name_key UNIQUE (rule_id, name),
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

-- One index covers both FKs.
CREATE INDEX test_cases_org_project_rule_idx ON test_cases (organization_id, project_id, rule_id);

CREATE TRIGGER test_cases_set_updated_at
    BEFORE UPDATE ON test_cases
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
