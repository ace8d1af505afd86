-- V0010: the indexes that serve the product's queries (beyond the keys and foreign-key
-- indexes the earlier files create with their tables). Each one names the query it
-- serves; docs/benchmarks.md shows their plans at a million rules.
--
-- The design's four index names exist. Where a design index is the leading part of one
-- the product needs anyway, the design's name is given to the wider index instead of
-- keeping two: the same lookups, one index to keep up on every write.
--
-- Plain CREATE INDEX: the baseline runs on an empty database. Indexes added to a live
-- database later go in their own file with CONCURRENTLY (`-- migrationpilot: no-transaction`).
-- squawk-ignore-file require-concurrent-index-creation

-- The design's: an organization's projects (`projects list --org`, the RLS filter).
CREATE INDEX idx_projects_org ON projects (organization_id);

-- A project named on the command line (`--project "Loans core"`) without --org: by name
-- alone, where the unique (organization_id, name) cannot serve.
CREATE INDEX projects_name_idx ON projects (name);

-- The design's (project_id, review_status), widened: `rules list --project P --status S`
-- (and --pending) in confidence order, and the dashboard's counts by status and category
-- and its average confidence as one index-only scan (category is carried, not sorted on).
CREATE INDEX idx_rules_project_status
    ON business_rules (project_id, review_status, confidence DESC, id) INCLUDE (category);

-- `rules list --project P` of every status, in confidence order.
CREATE INDEX business_rules_project_id_confidence_idx
    ON business_rules (project_id, confidence DESC, id);

-- The reviewers' queue across projects: `rules list --pending` of an organization, which is
-- what every user gets under row-level security (organization_id = the user's), and of the
-- operator across all organizations. Partial: only pending rules are in them.
CREATE INDEX business_rules_organization_pending_idx
    ON business_rules (organization_id, confidence DESC, id) WHERE review_status = 'pending';
CREATE INDEX business_rules_pending_confidence_idx
    ON business_rules (confidence DESC, id) WHERE review_status = 'pending';

-- The design's (project_id), widened: `files list -p P`, the files half of `projects show
-- P`, the merge statements of `files import` and the source lookups of `rules import`, by
-- (project_id, path). Every row holds the file's text (kilobytes), so the columns those
-- read ride along and each is an index-only scan; organization_id too, so that row level
-- security's filter is checked from the index.
CREATE INDEX idx_source_files_project
    ON source_files (project_id, path)
    INCLUDE (organization_id, id, language, line_count, code_lines, comment_lines, blank_lines,
             size_bytes, encoding, sha256, updated_at);

-- The design's: the newest audit rows first (`audit list` as the operator).
CREATE INDEX idx_audit_created ON audit_logs (created_at DESC);
-- `audit list` under row level security (an organization's recent activity), and the
-- index of the organization foreign key's SET NULL.
CREATE INDEX audit_logs_organization_id_created_at_idx
    ON audit_logs (organization_id, created_at DESC);
-- `audit purge`: a tenant's rows older than its retention.
CREATE INDEX audit_logs_tenant_id_created_at_idx ON audit_logs (tenant_id, created_at);
-- `audit list --action A`.
CREATE INDEX audit_logs_action_idx ON audit_logs (action);
