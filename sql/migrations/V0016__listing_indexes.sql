-- migrationpilot: no-transaction
-- V0016: an index path for every listing at scale (issue 7; docs/benchmarks.md shows the
-- plans at a million rules).
--
-- Outside a transaction, with CONCURRENTLY, so that a live database keeps taking writes
-- while the indexes build. Each statement is idempotent: a run that fails midway is simply
-- run again.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction

-- `rules list --project P --status S` (and --pending) in confidence order, and the
-- dashboard's counts by status and category and its average confidence as one index-only
-- scan (category is carried, not sorted on). Supersedes (project_id, review_status) and the
-- project-only pending index of V0005, which are dropped below: the same number of indexes
-- to keep up on every write.
CREATE INDEX CONCURRENTLY IF NOT EXISTS business_rules_project_status_confidence_idx
    ON business_rules (project_id, review_status, confidence DESC, id) INCLUDE (category);

-- The reviewers' queue across projects: `rules list --pending` of an organization, which is
-- what every user gets under row-level security (organization_id = the user's), and of
-- the operator across all organizations. Partial: only pending rules are in them.
CREATE INDEX CONCURRENTLY IF NOT EXISTS business_rules_organization_pending_idx
    ON business_rules (organization_id, confidence DESC, id) WHERE review_status = 'pending';
CREATE INDEX CONCURRENTLY IF NOT EXISTS business_rules_pending_confidence_idx
    ON business_rules (confidence DESC, id) WHERE review_status = 'pending';

DROP INDEX CONCURRENTLY IF EXISTS business_rules_project_id_review_status_idx;
DROP INDEX CONCURRENTLY IF EXISTS business_rules_pending_idx;

-- A project named on the command line (`--project "Loans core"`) without --org: by name
-- alone, where the unique (organization_id, name) cannot serve.
CREATE INDEX CONCURRENTLY IF NOT EXISTS projects_name_idx ON projects (name);
