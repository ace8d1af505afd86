-- migrationpilot: no-transaction
-- V0017: fewer index entries and trigger calls per rule written (issue 7: `rules import` of
-- 100,000 rules). EXPLAIN (ANALYZE, BUFFERS) of such an import spent most of its time keeping up
-- indexes: eight index entries for every business_rules row, four for every rule_versions row
-- the versioning trigger writes, and a PL/pgSQL call per inserted row to force version 1.
-- What each statement below guarantees stays exactly as it was.
--
-- Outside a transaction, with CONCURRENTLY, so that a live database keeps taking writes while
-- the indexes build. Each statement is idempotent: a run that fails midway is simply run again.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction, ban-drop-constraint

-- ---------------------------------------------------------------------------------------------
-- The version number of a new rule: V0005's BEFORE trigger sets it to 1 on every INSERT. The
-- WHEN clause is evaluated without calling PL/pgSQL, so the function now runs only for the rare
-- client that sends another number, and still resets it. The insert trigger is created first:
-- until the old one is narrowed to UPDATE both fire, which is harmless; never neither.
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE TRIGGER business_rules_version_insert
    BEFORE INSERT ON business_rules
    FOR EACH ROW
    WHEN (NEW.version IS DISTINCT FROM 1)
    EXECUTE FUNCTION business_rules_bump_version();

CREATE OR REPLACE TRIGGER business_rules_version
    BEFORE UPDATE ON business_rules
    FOR EACH ROW EXECUTE FUNCTION business_rules_bump_version();

-- ---------------------------------------------------------------------------------------------
-- Foreign-key indexes of nullable references, partial: they serve the lookups of ON DELETE SET
-- NULL when a user is deleted (`reviewed_by = $1`, which implies IS NOT NULL), and rows that
-- name nobody are never looked up. Every imported rule is unreviewed, and every version written
-- in operator mode has no acting user: neither gets an entry any more.
-- ---------------------------------------------------------------------------------------------
CREATE INDEX CONCURRENTLY IF NOT EXISTS business_rules_organization_id_reviewed_by_set_idx
    ON business_rules (organization_id, reviewed_by) WHERE reviewed_by IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS business_rules_organization_id_reviewed_by_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS rule_versions_organization_id_changed_by_set_idx
    ON rule_versions (organization_id, changed_by) WHERE changed_by IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS rule_versions_organization_id_changed_by_idx;

-- ---------------------------------------------------------------------------------------------
-- rule_versions: one index where there were two. The unique (rule_id, version) becomes
-- (rule_id, organization_id, version), which also leads with the columns of the foreign key to
-- business_rules (organization_id, rule_id), so V0005's separate index for that key goes. The
-- uniqueness is the same: a rule belongs to one organization (that foreign key), so
-- (rule_id, organization_id) names one rule just as rule_id does. `rules history` and `rules
-- diff` still find a rule's versions by rule_id, the leading column.
-- ---------------------------------------------------------------------------------------------
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS rule_versions_rule_id_organization_id_version_key
    ON rule_versions (rule_id, organization_id, version);

-- One ALTER TABLE: the old constraint is dropped and the new one added atomically.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_constraint
                WHERE conrelid = 'public.rule_versions'::regclass
                  AND conname = 'rule_versions_rule_id_version_key') THEN
        ALTER TABLE public.rule_versions
            DROP CONSTRAINT rule_versions_rule_id_version_key,
            ADD CONSTRAINT rule_versions_rule_id_organization_id_version_key
                UNIQUE USING INDEX rule_versions_rule_id_organization_id_version_key;
    END IF;
END
$$;

DROP INDEX CONCURRENTLY IF EXISTS rule_versions_organization_id_rule_id_idx;
