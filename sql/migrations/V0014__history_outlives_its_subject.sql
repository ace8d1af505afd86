-- V0014: a rule's history outlives the rule.
--
-- Until now rule_versions referred to business_rules ON DELETE CASCADE, so deleting a rule (or
-- its project) deleted the record of every change to it, and who deleted it was recorded
-- nowhere. Versions are the record of what was decided; they must be there when the rule is
-- gone. So:
--   * rule_versions refers to its organization instead of its rule: a deleted rule keeps its
--     versions, and rule_id becomes a plain uuid (as audit_logs.resource_id is);
--   * deleting a rule writes one last version that records the deletion: who, when, why;
--   * an id a deleted rule had stays with its history: no new rule may take it;
--   * versions go only when the owner removes them: `audit purge` (the versions of a rule
--     deleted longer ago than its tenant's data_retention_days) or deleting the whole
--     organization (or tenant).
-- The app role keeps SELECT and INSERT only (V0009), and a client's row still only completes a
-- version the database wrote in the same transaction (rule_versions_complete, V0005): without
-- the rule foreign key, that trigger alone keeps a client from inventing versions of a deleted
-- or unknown rule, and it already refused every version the database did not write.
--
-- Locks, on purpose in one transaction (the keys and the triggers change together or not at
-- all): the foreign key's validation and the index build read rule_versions once while writes
-- to it wait (every change of a rule writes a version), a few seconds at a million versions.

-- ---------------------------------------------------------------------------
-- The organization, not the rule.
-- ---------------------------------------------------------------------------
-- The guarantee dropped here (versions go with their rule) is the one this file removes.
-- squawk-ignore ban-drop-constraint
ALTER TABLE rule_versions DROP CONSTRAINT rule_versions_rule_fkey;

-- ON DELETE CASCADE: the owner deleting a whole organization (or its tenant) is the one act
-- that removes all of its data, history included; nothing else deletes versions but the
-- retention purge. Every existing row passes: its organization was its rule's, whose project's
-- foreign key leads to organizations.
ALTER TABLE rule_versions
    -- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
    ADD CONSTRAINT rule_versions_organization_fkey
    FOREIGN KEY (organization_id) REFERENCES organizations (id) ON DELETE CASCADE;

-- Indexes. rule_versions_rule_id_organization_id_version_key (V0005) was also the rule foreign
-- key's index; it still serves a rule's versions by rule_id (`rules history`, `rules diff`, the
-- completion trigger's lookup, the purge), so it stays. The organization foreign key needs an
-- index led by organization_id (the cascade of an organization's deletion); the changed_by
-- foreign key's partial (organization_id, changed_by) index cannot serve it (a version without
-- an author has no entry there). One full index on the same columns serves both keys: three
-- indexes per version as before (a version without an author now has an entry here too),
-- rather than a fourth, and none left unused.
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX rule_versions_organization_id_changed_by_idx;
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX rule_versions_organization_id_changed_by_idx
    ON rule_versions (organization_id, changed_by);

-- ---------------------------------------------------------------------------
-- The versioning trigger (V0005), with two changes:
--   * INSERT: refuses a new rule under the id of a deleted one. Its versions still name that
--     id, and a second rule under it would merge two histories (or, in the same organization,
--     collide with version 1). One probe of the rule_id index per inserted row.
--   * UPDATE: also skips rules whose organization is gone. Deleting an organization clears
--     business_rules.reviewed_by (its users go: SET NULL, a change, so a version) and deletes
--     its rules, both in the cascade of the one statement. V0005 skips the version of a rule
--     already deleted; this skips one whose organization is, so the outcome does not depend
--     on the order the cascades run in (such a version would fail its foreign key now).
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION business_rules_record_versions() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    reused uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT n.id INTO reused
          FROM new_rules AS n
         WHERE EXISTS (SELECT 1 FROM public.rule_versions AS v WHERE v.rule_id = n.id)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING
                ERRCODE = 'unique_violation',
                CONSTRAINT = 'rule_versions_rule_id_kept',
                MESSAGE = pg_catalog.format('rule id %s belongs to a deleted rule''s history', reused),
                DETAIL = 'The versions of a deleted rule keep its id, so no new rule may take it.',
                HINT = 'Insert the rule without an id (the database generates one).';
        END IF;
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
          AND EXISTS (SELECT 1 FROM public.business_rules AS r WHERE r.id = n.id)
          AND EXISTS (SELECT 1 FROM public.organizations AS g WHERE g.id = n.organization_id);
    END IF;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

-- ---------------------------------------------------------------------------
-- The deletion is the rule's last version.
--
-- AFTER DELETE, once per statement over the deleted rows (a transition table): deleting a
-- project of 100,000 rules writes their 100,000 last versions in one INSERT ... SELECT. Each
-- is version + 1 of its rule (numbering stays gapless, and the completion trigger lets a
-- client complete it like any other), its snapshot the deleted row numbered as that version
-- (as every snapshot carries its own row's version), changed_by the acting user and
-- change_reason app.change_reason, else 'deleted'.
--
-- Rules whose organization is gone are skipped: deleting an organization (or a tenant)
-- cascades to its rules after the organization row is deleted, and takes the organization's
-- versions with it (rule_versions_organization_fkey), so there is nothing to record and
-- nowhere to record it.
--
-- Runs as its owner (SECURITY DEFINER, pinned search_path), as the other versioning trigger:
-- the app role cannot write versions itself, and the version is the database's record of the
-- change, whoever made it. Cascades (a project's deletion) fire it too.
-- ---------------------------------------------------------------------------
CREATE FUNCTION business_rules_record_deletions() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO public.rule_versions
        (organization_id, rule_id, version, snapshot, changed_by, change_reason)
    SELECT o.organization_id, o.id, o.version + 1,
           pg_catalog.to_jsonb(o) || pg_catalog.jsonb_build_object('version', o.version + 1),
           public.current_user_id(),
           coalesce(NULLIF(pg_catalog.current_setting('app.change_reason', true), ''), 'deleted')
    FROM old_rules AS o
    WHERE EXISTS (SELECT 1 FROM public.organizations AS g WHERE g.id = o.organization_id);
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

CREATE TRIGGER business_rules_record_versions_delete
    AFTER DELETE ON business_rules
    REFERENCING OLD TABLE AS old_rules
    FOR EACH STATEMENT EXECUTE FUNCTION business_rules_record_deletions();

-- Definer functions are not for PUBLIC (V0009); a trigger needs no EXECUTE grant to fire.
REVOKE EXECUTE ON FUNCTION business_rules_record_deletions() FROM PUBLIC;
