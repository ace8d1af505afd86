-- V0017: a bulk import of rules pays for its invariants and for nothing else (issue 25).
--
-- Measured on a database of 1,000,000 rules (bench SCALE=large, 2 CPUs): psql inserting
-- 100,000 finished rules into business_rules, EXPLAIN (ANALYZE, BUFFERS) per trigger, took
-- the heap and its eight index entries about half, the versioning trigger (its snapshots into
-- rule_versions, their three index entries and foreign-key checks) the other half. Three
-- things here cut that without giving up a guarantee:
--
--   * One unique index fewer on business_rules. business_rules_organization_id_id_key was the
--     target of rule_versions_rule_fkey, which V0014 dropped: no key refers to it and no query
--     reads it (a rule is found by its primary key, its project's by
--     business_rules_org_project_id_key). Each new rule paid an entry in it at a random place
--     of a 60 MB index.
--   * Time-ordered ids for the versions the database writes. A random uuid puts each new entry
--     of the primary key at a random page; a time-ordered one (uuidv7, RFC 9562) appends at the
--     right edge, and the pages fill instead of splitting half-empty. Nobody types a version's
--     id, so nothing is lost. Rules keep random ids: people name a rule by the first digits of
--     its id (docs/schema.md, "Keys"), and the first 8 hex digits of a time-ordered id are the
--     same for every rule written in the same minute. The columns keep the design's default
--     (gen_random_uuid()), so other clients' rows are as before.
--   * The versioning trigger reads the acting user and the change reason once per statement,
--     not once per row.

-- ---------------------------------------------------------------------------
-- The index no key needs.
-- ---------------------------------------------------------------------------
-- squawk-ignore ban-drop-constraint
ALTER TABLE business_rules DROP CONSTRAINT business_rules_organization_id_id_key;

-- ---------------------------------------------------------------------------
-- time_ordered_uuid(): a version 7 uuid (RFC 9562): 48 bits of Unix time in milliseconds,
-- then random bits. PostgreSQL 18 has uuidv7() built in, which also keeps the ids of one
-- session in order within a millisecond; before 18 the same layout is built from a random
-- uuid (ids within one millisecond are then in random order among themselves, which costs
-- nothing measurable). A SQL function of one expression: the planner inlines it.
-- ---------------------------------------------------------------------------
DO $$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::int >= 180000 THEN
        CREATE FUNCTION public.time_ordered_uuid() RETURNS uuid
            LANGUAGE sql VOLATILE PARALLEL SAFE
            RETURN pg_catalog.uuidv7();
    ELSE
        CREATE FUNCTION public.time_ordered_uuid() RETURNS uuid
            LANGUAGE sql VOLATILE PARALLEL SAFE
            RETURN pg_catalog.encode(
                pg_catalog.set_bit(pg_catalog.set_bit(
                    pg_catalog.overlay(
                        pg_catalog.uuid_send(pg_catalog.gen_random_uuid()),
                        pg_catalog.substr(pg_catalog.int8send(pg_catalog.floor(
                            pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) * 1000
                        )::bigint), 3),
                        1, 6),
                    52, 1), 53, 1),
                'hex')::uuid;
    END IF;
END
$$;

COMMENT ON FUNCTION time_ordered_uuid() IS
    'A version 7 (time-ordered) uuid: keys written in bulk append to their index instead of scattering (V0017).';

-- ---------------------------------------------------------------------------
-- The versioning trigger of V0014, with time-ordered version ids and the acting user and
-- change reason read once per statement.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION business_rules_record_versions() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    reused uuid;
    acting uuid := public.current_user_id();
    reason text := NULLIF(pg_catalog.current_setting('app.change_reason', true), '');
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
            (id, organization_id, rule_id, version, snapshot, changed_by, change_reason)
        SELECT public.time_ordered_uuid(), n.organization_id, n.id, n.version,
               pg_catalog.to_jsonb(n), acting, reason
        FROM new_rules AS n;
    ELSE
        INSERT INTO public.rule_versions
            (id, organization_id, rule_id, version, snapshot, changed_by, change_reason)
        SELECT public.time_ordered_uuid(), n.organization_id, n.id, n.version,
               pg_catalog.to_jsonb(n), acting, reason
        FROM new_rules AS n
        JOIN old_rules AS o ON o.id = n.id
        WHERE n.version IS DISTINCT FROM o.version
          AND EXISTS (SELECT 1 FROM public.business_rules AS r WHERE r.id = n.id)
          AND EXISTS (SELECT 1 FROM public.organizations AS g WHERE g.id = n.organization_id);
    END IF;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

-- The deletion's version (V0014), likewise.
CREATE OR REPLACE FUNCTION business_rules_record_deletions() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    acting uuid := public.current_user_id();
    reason text := coalesce(NULLIF(pg_catalog.current_setting('app.change_reason', true), ''),
                            'deleted');
BEGIN
    INSERT INTO public.rule_versions
        (id, organization_id, rule_id, version, snapshot, changed_by, change_reason)
    SELECT public.time_ordered_uuid(), o.organization_id, o.id, o.version + 1,
           pg_catalog.to_jsonb(o) || pg_catalog.jsonb_build_object('version', o.version + 1),
           acting, reason
    FROM old_rules AS o
    WHERE EXISTS (SELECT 1 FROM public.organizations AS g WHERE g.id = o.organization_id);
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;
