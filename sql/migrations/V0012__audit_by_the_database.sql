-- V0012: the database writes the audit log, whoever the client.
--
-- Until now the CLI wrote an audit row beside each change, so a change made by another
-- client (an application through the app role, psql) left no trace. Now every INSERT,
-- UPDATE and DELETE on a table of business data writes its audit rows from an AFTER
-- statement trigger, in the same transaction, set-based over the transition tables:
--
--   table            resource_type    detail
--   tenants          tenant           one row per changed row, with its old and new values
--   organizations    organization     "
--   users            user             "
--   projects         project          "
--   routing_rules    routing_rule     "
--   business_rules   rule             updates (an edit, a review): one row per rule, with
--                                     the changed fields' old and new values (the version
--                                     among them); inserts and deletes: one row per statement
--   source_files     source_file      one row per statement (and organization, and 100,000
--   generated_files  generated_file   ids), with the count and the ids: a 100,000-rule
--   test_cases       test_case        import writes one audit row, not 100,000
--
-- action is '<resource_type>.<verb>', the verb create, update or delete; a rule update
-- that changes review_status is 'rule.approve', 'rule.reject', 'rule.clarify' or
-- 'rule.reopen' (back to pending).
--
-- Who, where and when come from the database alone: the acting user (app.current_user_id,
-- with their email kept in the row), the organization and tenant from the changed row,
-- now(), inet_client_addr() and session_user (the column defaults). What only the client
-- knows comes through transaction-local settings, into metadata:
--   app.client          what made the change ('migrationpilot rules edit'); 'sql' when unset
--   app.change_reason   why (also the reason of a rule's version, V0005)
--
-- An application may still write audit rows of its own (the design's apps record logins
-- and the like); the database stamps the actor, organization, tenant, time, address and
-- login of such a row itself (audit_logs_stamp below), so the app role cannot supply them.

-- ---------------------------------------------------------------------------
-- What a change to a rule's review status is called.
-- ---------------------------------------------------------------------------
CREATE FUNCTION audit_verb(resource text, operation text, old_row jsonb, new_row jsonb)
    RETURNS text
    LANGUAGE sql
    IMMUTABLE
    PARALLEL SAFE
AS $$
    SELECT CASE
               WHEN operation = 'INSERT' THEN 'create'
               WHEN operation = 'DELETE' THEN 'delete'
               WHEN resource = 'rule'
                    AND old_row -> 'review_status' IS DISTINCT FROM new_row -> 'review_status'
                   THEN CASE new_row ->> 'review_status'
                            WHEN 'approved' THEN 'approve'
                            WHEN 'rejected' THEN 'reject'
                            WHEN 'needs_clarification' THEN 'clarify'
                            ELSE 'reopen'
                        END
               ELSE 'update'
           END
$$;

-- ---------------------------------------------------------------------------
-- The trigger function, shared by every audited table. Arguments: the resource type, and
-- 'rows' (a row per changed row) or 'statement' (a row per statement and organization).
--
-- SECURITY DEFINER (pinned search_path, every object qualified): the audit row is the
-- database's record, written past the app role's grants and policies on audit_logs; the
-- owner of the function is the owner of the table.
--
-- Rows whose organization is gone are deleted by the organization's own deletion (a
-- cascade): that deletion's audit row stands for them, and theirs would name an
-- organization that no longer exists (audit_logs.organization_id is a foreign key).
-- ---------------------------------------------------------------------------
CREATE FUNCTION audit_changes() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    resource    text := TG_ARGV[0];
    actor_id    uuid;
    actor_email text;
    context     jsonb := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                    'client', coalesce(NULLIF(pg_catalog.current_setting('app.client', true), ''), 'sql'),
                    'reason', NULLIF(pg_catalog.current_setting('app.change_reason', true), '')));
BEGIN
    SELECT u.id, u.email INTO actor_id, actor_email
      FROM public.users AS u
     WHERE u.id = public.current_user_id();

    IF TG_ARGV[1] = 'statement' THEN
        -- The changed rows' ids, per organization: old_rows for a delete, else new_rows. At
        -- most 100,000 ids a row (4 MB of jsonb; a jsonb value cannot exceed 256 MB, so one
        -- row for a statement of ten million would fail it). Dynamic only in the transition
        -- table's name (trigger-owned, never user input).
        EXECUTE pg_catalog.format($sql$
            INSERT INTO public.audit_logs
                (tenant_id, organization_id, user_id, actor_email, action, resource_type,
                 resource_id, metadata)
            SELECT o.tenant_id, o.id, $1, $2, $3, $4,
                   CASE WHEN s.ids_count = 1 THEN s.ids[1] END,
                   $5 || pg_catalog.jsonb_build_object('count', s.ids_count,
                                                       'ids', pg_catalog.to_jsonb(s.ids))
              FROM (SELECT r.organization_id, pg_catalog.count(*) AS ids_count,
                           pg_catalog.array_agg(r.id ORDER BY r.id) AS ids
                      FROM (SELECT t.organization_id, t.id,
                                   (pg_catalog.row_number() OVER (PARTITION BY t.organization_id
                                                                  ORDER BY t.id) - 1)
                                   / 100000 AS part
                              FROM %I AS t) AS r
                     GROUP BY r.organization_id, r.part) AS s
              JOIN public.organizations AS o ON o.id = s.organization_id
             ORDER BY o.id
            $sql$, CASE TG_OP WHEN 'DELETE' THEN 'old_rows' ELSE 'new_rows' END)
        USING actor_id, actor_email,
              resource || '.' || public.audit_verb(resource, TG_OP, NULL, NULL),
              resource, context;
        RETURN NULL;
    END IF;

    -- One (old, new) pair of jsonb images per changed row, streamed from the transition
    -- tables (never gathered into one value: a statement may change a million rows), so the
    -- same query serves every table and operation. Dynamic only in that constant source.
    EXECUTE pg_catalog.format($sql$
        INSERT INTO public.audit_logs
            (tenant_id, organization_id, user_id, actor_email, action, resource_type,
             resource_id, metadata)
        SELECT w.tenant_id, w.organization_id, $1, $2,
               $3 || '.' || public.audit_verb($3, $4, c.old_row, c.new_row),
               $3, (any_row.r ->> 'id')::uuid,
               -- (Not jsonb_strip_nulls: a field set to NULL must show as null in 'new'.)
               $5
               || CASE WHEN d.old_values IS NULL THEN '{}'
                       ELSE pg_catalog.jsonb_build_object('old', d.old_values) END
               || CASE WHEN d.new_values IS NULL THEN '{}'
                       ELSE pg_catalog.jsonb_build_object('new', d.new_values) END
          -- OFFSET 0 keeps the images a subquery's output, made once per row: pulled up
          -- into this query, to_jsonb() ran again at every use (25 times a rule).
          FROM (%s OFFSET 0) AS c (old_row, new_row)
         CROSS JOIN LATERAL (SELECT coalesce(c.new_row, c.old_row) AS r) AS any_row
         -- Where the row belongs. A tenant belongs to no organization; an organization's
         -- row keeps its tenant after the organization is gone; any other row's
         -- organization must still exist (see above).
         CROSS JOIN LATERAL (
             SELECT (any_row.r ->> 'id')::uuid AS tenant_id, NULL::uuid AS organization_id
              WHERE $3 = 'tenant'
             UNION ALL
             SELECT (any_row.r ->> 'tenant_id')::uuid,
                    (SELECT o.id FROM public.organizations AS o
                      WHERE o.id = (any_row.r ->> 'id')::uuid)
              WHERE $3 = 'organization'
             UNION ALL
             SELECT o.tenant_id, o.id
               FROM public.organizations AS o
              WHERE $3 NOT IN ('tenant', 'organization')
                AND o.id = (any_row.r ->> 'organization_id')::uuid) AS w
         -- The fields that changed (every field of a created or deleted row), the
         -- timestamps the database keeps left out; an update that changed nothing is not
         -- audited.
         CROSS JOIN LATERAL (
             SELECT pg_catalog.jsonb_object_agg(k.key, c.old_row -> k.key)
                        FILTER (WHERE c.old_row IS NOT NULL) AS old_values,
                    pg_catalog.jsonb_object_agg(k.key, c.new_row -> k.key)
                        FILTER (WHERE c.new_row IS NOT NULL) AS new_values
               FROM pg_catalog.jsonb_object_keys(any_row.r) AS k (key)
              WHERE k.key NOT IN ('created_at', 'updated_at')
                AND (c.old_row IS NULL OR c.new_row IS NULL
                     OR c.old_row -> k.key IS DISTINCT FROM c.new_row -> k.key)) AS d
         WHERE d.old_values IS NOT NULL OR d.new_values IS NOT NULL
         ORDER BY (any_row.r ->> 'id')
        $sql$,
        CASE TG_OP
            WHEN 'INSERT' THEN
                'SELECT NULL::jsonb, pg_catalog.to_jsonb(n) FROM new_rows AS n'
            WHEN 'DELETE' THEN
                'SELECT pg_catalog.to_jsonb(o), NULL::jsonb FROM old_rows AS o'
            ELSE
                'SELECT pg_catalog.to_jsonb(o), pg_catalog.to_jsonb(n)'
                ' FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id'
        END)
    USING actor_id, actor_email, resource, TG_OP, context;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION audit_changes() IS
    'Statement trigger (resource_type, rows|statement): writes the audit rows of every change, whoever the client.';

-- The triggers: three per table (a trigger with transition tables has one event), named
-- <table>_audit_<event>, each calling audit_changes(resource_type, detail) with the detail of
-- the table at the top of this file. AFTER triggers fire in name order: *_audit_* after the
-- role checks (business_rules_check_user_role_*), so a refused statement is refused before it
-- is audited. Made in a loop over this list, so that the list is the whole story; the names
-- and arguments are the literals below, quoted by format().
DO $$
DECLARE
    audited record;
BEGIN
    FOR audited IN
        SELECT *
          FROM (VALUES
              -- table            resource_type     INSERT       UPDATE       DELETE
              ('tenants',         'tenant',         'rows',      'rows',      'rows'),
              ('organizations',   'organization',   'rows',      'rows',      'rows'),
              ('users',           'user',           'rows',      'rows',      'rows'),
              ('projects',        'project',        'rows',      'rows',      'rows'),
              ('routing_rules',   'routing_rule',   'rows',      'rows',      'rows'),
              ('business_rules',  'rule',           'statement', 'rows',      'statement'),
              ('source_files',    'source_file',    'statement', 'statement', 'statement'),
              ('generated_files', 'generated_file', 'statement', 'statement', 'statement'),
              ('test_cases',      'test_case',      'statement', 'statement', 'statement')
          ) AS a (tablename, resource, on_insert, on_update, on_delete)
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I'
                       ' REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION audit_changes(%L, %L)',
                       audited.tablename || '_audit_insert', audited.tablename,
                       audited.resource, audited.on_insert);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I'
                       ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION audit_changes(%L, %L)',
                       audited.tablename || '_audit_update', audited.tablename,
                       audited.resource, audited.on_update);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I'
                       ' REFERENCING OLD TABLE AS old_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION audit_changes(%L, %L)',
                       audited.tablename || '_audit_delete', audited.tablename,
                       audited.resource, audited.on_delete);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- An audit row an application writes itself: the time and the client address are the
-- database's, whatever the insert gave; the actor, organization and tenant are filled from
-- the session when left out, and when given must be the session's (the policies of V0009
-- refuse any other: audit_logs_isolation, audit_logs_actor). Only where row level security
-- applies (the app role); the owner is trusted. SECURITY INVOKER: the helpers it calls are
-- the app role's anyway (V0009, V0011). Its trigger's name sorts before audit_logs_fill
-- (BEFORE triggers fire in name order), so the fill has nothing left to do.
-- ---------------------------------------------------------------------------
CREATE FUNCTION audit_logs_stamp() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.user_id         := coalesce(NEW.user_id, public.current_user_id());
    NEW.actor_email     := coalesce(NEW.actor_email, public.current_user_email());
    NEW.organization_id := coalesce(NEW.organization_id, public.current_organization_id());
    NEW.tenant_id       := coalesce(NEW.tenant_id, public.current_tenant_id());
    NEW.created_at      := pg_catalog.now();
    NEW.ip_address      := pg_catalog.inet_client_addr()::text;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_logs_by_session
    BEFORE INSERT ON audit_logs
    FOR EACH ROW
    WHEN (row_security_active('audit_logs'))
    EXECUTE FUNCTION audit_logs_stamp();

-- audit_verb is for the trigger above (run as the owner); nobody else needs it. V0011's
-- default privileges already keep these functions from PUBLIC.
