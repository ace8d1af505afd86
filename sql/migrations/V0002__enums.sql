-- V0002: enumerated types (the design's five, and three of ours)
--
-- Enums rather than lookup tables or CHECK lists: the value sets are part of
-- the product (the CLI validates against the same lists), they are small, and
-- an enum gives a single named type reused across tables.
-- Adding a value later is a cheap `ALTER TYPE ... ADD VALUE`; removing or
-- renaming one is not, so only stable vocabularies live here.
-- Labels with a hyphen ('java-legacy', 'cobol-copybook') match the CLI's
-- user-facing spelling, so no translation layer is needed.

-- Lifecycle of a migration project. The order of the labels follows the
-- workflow so that ORDER BY status sorts projects by progress.
-- (Allowed transitions are enforced by a trigger added in a later migration.)
CREATE TYPE project_status AS ENUM (
    'draft',
    'analyzing',
    'analysis_complete',
    'designing',
    'design_complete',
    'generating',
    'generation_complete',
    'validating',
    'validation_complete',
    'completed',
    'failed'
);

-- Language of a project's legacy code base (project level).
CREATE TYPE source_language AS ENUM (
    'cobol',
    'fortran',
    'vb6',
    'vba',
    'java-legacy'
);

-- Language the project is migrated to.
CREATE TYPE target_language AS ENUM (
    'java',
    'python',
    'typescript',
    'go',
    'csharp'
);

-- Kind of business rule extracted from legacy code.
CREATE TYPE rule_category AS ENUM (
    'calculation',
    'validation',
    'decision',
    'transformation',
    'workflow',
    'constraint'
);

-- Human review state of an extracted business rule.
CREATE TYPE review_status AS ENUM (
    'pending',
    'approved',
    'rejected',
    'needs_clarification'
);

-- Application-level role of a user inside their organization. This is an
-- authorization attribute checked by the CLI, not a PostgreSQL role.
CREATE TYPE user_role AS ENUM (
    'admin',
    'architect',
    'reviewer',
    'developer',
    'viewer'
);

-- What a generated file is for.
CREATE TYPE generated_file_type AS ENUM (
    'source',
    'test',
    'config',
    'doc'
);

-- Kind of an individual uploaded legacy file. Finer than source_language:
-- a COBOL project also contains copybooks and JCL, which are parsed
-- differently, so they get their own kinds instead of being lumped in 'cobol'.
CREATE TYPE source_file_kind AS ENUM (
    'cobol',
    'cobol-copybook',
    'fortran',
    'vb6',
    'vba',
    'java',
    'jcl'
);
