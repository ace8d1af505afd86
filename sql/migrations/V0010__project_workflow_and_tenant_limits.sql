-- V0010: the project status workflow and the tenant limits, enforced by the database.
--
-- Both are rules the CLI also knows about, but they live here so that no
-- client can skip them: not psql, not a DBA script, not a second tool.
--
-- 1. Project status workflow (a plain, SECURITY INVOKER row trigger):
--        draft -> analyzing -> analysis_complete -> designing -> design_complete
--          -> generating -> generation_complete -> validating
--          -> validation_complete -> completed
--    Any state may move to failed; a failed project may move back to the state
--    it failed from (projects.failed_from, kept by the trigger) or to draft.
--    A new project starts as draft.
--
-- 2. Tenant limits (tenants.max_projects, tenants.max_lines_of_code), checked
--    by statement-level AFTER triggers that are SECURITY DEFINER: the limit
--    counts every organization of the tenant, including rows the acting app
--    role cannot see through row level security.
--    tenants.max_users_per_project is NOT enforced: the schema has no
--    project membership yet, so there is nothing to count.
--
-- Every error is SQLSTATE 23514 (check_violation) with a constraint name the
-- CLI can map to a message: project_status_workflow, tenant_max_projects,
-- tenant_max_lines_of_code.

-- ===========================================================================
-- 1. Project status workflow
-- ===========================================================================

-- Where a failed project failed from: the one state, besides draft, it may
-- return to. Set and cleared only by the workflow trigger below.
ALTER TABLE projects ADD COLUMN failed_from project_status;

COMMENT ON COLUMN projects.failed_from IS
    'State the project was in when it moved to failed; NULL unless status = failed. Kept by the workflow trigger.';

-- Projects that were already 'failed' before this migration have no known
-- origin. Give them 'draft', the return that is always allowed, so that the
-- CHECK below holds for every existing row. (None exist in practice; this
-- keeps the migration correct if some do.)
UPDATE projects SET failed_from = 'draft' WHERE status = 'failed';

-- Validated right away instead of NOT VALID + VALIDATE: ADD COLUMN above has
-- already taken the ACCESS EXCLUSIVE lock on projects in this transaction,
-- and the table is small (at most max_projects rows per tenant), so the scan
-- costs nothing a second step would save.
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE projects ADD CONSTRAINT projects_failed_from_check
    CHECK ((status = 'failed') = (failed_from IS NOT NULL));

-- The transition table, in one place: the trigger checks against it and the
-- CLI calls it to offer the valid next states. The next forward state comes
-- first, then failed; a failed project offers its failed_from state, then draft.
-- IMMUTABLE: the answer depends on the arguments only. A new project_status
-- label needs a new branch here (it would otherwise allow no move at all).
CREATE FUNCTION project_allowed_transitions(current project_status, failed_from project_status)
    RETURNS project_status[]
    LANGUAGE sql
    IMMUTABLE
    PARALLEL SAFE
AS $$
    SELECT CASE project_allowed_transitions.current
               WHEN 'draft'               THEN '{analyzing,failed}'::public.project_status[]
               WHEN 'analyzing'           THEN '{analysis_complete,failed}'
               WHEN 'analysis_complete'   THEN '{designing,failed}'
               WHEN 'designing'           THEN '{design_complete,failed}'
               WHEN 'design_complete'     THEN '{generating,failed}'
               WHEN 'generating'          THEN '{generation_complete,failed}'
               WHEN 'generation_complete' THEN '{validating,failed}'
               WHEN 'validating'          THEN '{validation_complete,failed}'
               WHEN 'validation_complete' THEN '{completed,failed}'
               WHEN 'completed'           THEN '{failed}'
               WHEN 'failed' THEN
                   CASE
                       WHEN project_allowed_transitions.failed_from IS NULL
                         OR project_allowed_transitions.failed_from = 'draft'
                           THEN '{draft}'
                       ELSE ARRAY[project_allowed_transitions.failed_from,
                                  'draft'::public.project_status]
                   END
           END
$$;

COMMENT ON FUNCTION project_allowed_transitions(project_status, project_status) IS
    'States a project in status `current` (with failed_from, when failed) may move to next.';

-- BEFORE INSERT: a project starts as draft.
-- BEFORE UPDATE (only when status or failed_from changes, see the WHEN
-- clauses): refuse a move the workflow does not allow, then set failed_from
-- (the old status when moving to failed, NULL otherwise).
-- failed_from belongs to this trigger. A client that writes back the value
-- the trigger would set anyway (a whole-row UPDATE) is fine; any other value
-- is refused rather than silently replaced, so a mistaken script is told.
-- Setting status to its current value (failed -> failed) is no change and
-- passes untouched.
-- Runs with the caller's rights: it reads nothing but the row itself.
CREATE FUNCTION projects_enforce_status_workflow() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    allowed          public.project_status[];
    next_failed_from public.project_status;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- A NULL status falls through to the NOT NULL constraint.
        IF NEW.status <> 'draft' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                CONSTRAINT = 'project_status_workflow',
                MESSAGE = pg_catalog.format('new project %L must start as draft, not %s',
                                            NEW.name, NEW.status),
                DETAIL = 'allowed initial states: draft',
                HINT = 'Create the project as draft, then move it through the workflow.';
        END IF;
        RETURN NEW;
    END IF;

    IF NEW.status IS DISTINCT FROM OLD.status THEN
        allowed := public.project_allowed_transitions(OLD.status, OLD.failed_from);
        -- A NULL status falls through to the NOT NULL constraint.
        IF NOT (NEW.status = ANY (allowed)) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                CONSTRAINT = 'project_status_workflow',
                MESSAGE = pg_catalog.format('project %s cannot move from %s to %s',
                                            OLD.id, OLD.status, NEW.status),
                DETAIL = pg_catalog.format('allowed next states: %s',
                                           pg_catalog.array_to_string(allowed, ', '));
        END IF;
        next_failed_from := CASE WHEN NEW.status = 'failed' THEN OLD.status END;
    ELSE
        next_failed_from := OLD.failed_from;
    END IF;

    IF NEW.failed_from IS DISTINCT FROM OLD.failed_from
       AND NEW.failed_from IS DISTINCT FROM next_failed_from THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'project_status_workflow',
            MESSAGE = pg_catalog.format('project %s: failed_from is set by the status workflow, not by hand',
                                        OLD.id),
            HINT = 'Change status instead: moving to failed records the state it failed from.';
    END IF;
    NEW.failed_from := next_failed_from;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION projects_enforce_status_workflow() IS
    'Trigger: new projects start as draft; status moves only as project_allowed_transitions() allows; keeps failed_from.';

CREATE TRIGGER projects_status_workflow_insert
    BEFORE INSERT ON projects
    FOR EACH ROW
    WHEN (NEW.status <> 'draft')
    EXECUTE FUNCTION projects_enforce_status_workflow();

-- No column list (UPDATE OF status): the WHEN clause sees the final row, so
-- a change made by any other BEFORE trigger is checked as well.
CREATE TRIGGER projects_status_workflow_update
    BEFORE UPDATE ON projects
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status
          OR NEW.failed_from IS DISTINCT FROM OLD.failed_from)
    EXECUTE FUNCTION projects_enforce_status_workflow();

-- ===========================================================================
-- 2. Tenant limits
-- ===========================================================================
--
-- How a check works (both limits, same shape):
--   * Statement level, AFTER, with transition tables: one check per statement
--     however many rows it writes (a bulk import of 10,000 files is one sum,
--     not 10,000), and the check sees the statement's own rows.
--   * It first computes, from the transition tables alone, how much each
--     tenant touched by the statement GROWS. Tenants that do not grow are not
--     checked: deleting or shrinking never exceeds a limit, and a tenant
--     whose limit was lowered below its current use (allowed, see below) can
--     still edit and delete, just not grow.
--   * Then, for each growing tenant in tenant id order (a fixed order, so
--     two statements touching the same tenants cannot deadlock on them), it
--     locks the tenants row FOR NO KEY UPDATE. That serializes concurrent
--     writers of one tenant: the second waits here until the first commits or
--     rolls back. In READ COMMITTED (PostgreSQL's default and the CLI's) the
--     count/sum that follows is a new statement with a new snapshot, so it
--     sees what the first transaction committed and the second one fails:
--     two transactions cannot both squeeze past a limit.
--     NO KEY UPDATE rather than UPDATE: it conflicts with itself and with
--     UPDATEs of tenants (a limit being changed), but not with the KEY SHARE
--     locks that foreign-key checks take, so creating an organization of the
--     tenant does not queue behind a running import.
--     Under SERIALIZABLE the same race ends in a serialization failure for
--     one of the two (retry). REPEATABLE READ counts with the transaction's
--     own snapshot and is NOT protected; write to these tables in READ
--     COMMITTED or SERIALIZABLE.
--   * AFTER rather than BEFORE: by then row level security has checked every
--     row (the app role can only have written its own organization's rows),
--     so a refused write never reveals another tenant's usage, and a user
--     cannot make the trigger lock another tenant's row.
--   * SECURITY DEFINER (runs as the owner, whom RLS does not filter): the
--     acting app role sees only its own organization and its own tenants row,
--     but the limit counts all organizations of the tenant and the lock needs
--     the tenants row. Pinned search_path, no dynamic SQL, no arguments, all
--     tables schema-qualified. The transition tables are statement-local
--     names and need no schema.
--
-- Lowering a limit below current use (UPDATE tenants SET max_projects = ...)
-- is allowed on purpose: an operator downgrading a plan must not have to
-- delete data first. It only blocks further growth.
--
-- Not checked: moving an organization to another tenant
-- (UPDATE organizations SET tenant_id), an operator-only action.

-- ---------------------------------------------------------------------------
-- max_projects: the number of projects across all organizations of a tenant.
-- INSERT, and UPDATE (a project moved into an organization of another tenant
-- counts as one more there).
-- ---------------------------------------------------------------------------
CREATE FUNCTION projects_enforce_tenant_max_projects() RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    tenant_ids bigint[];
    added      bigint[];
    tenant     record;
    total      bigint;
BEGIN
    -- Growth per tenant, from this statement's rows only. The two branches
    -- are separate statements because old_projects exists only for UPDATE.
    IF TG_OP = 'INSERT' THEN
        SELECT pg_catalog.array_agg(g.tenant_id), pg_catalog.array_agg(g.growth)
          INTO tenant_ids, added
          FROM (SELECT o.tenant_id, pg_catalog.count(*) AS growth
                  FROM new_projects AS p
                  JOIN public.organizations AS o ON o.id = p.organization_id
                 GROUP BY o.tenant_id) AS g;
    ELSE
        SELECT pg_catalog.array_agg(g.tenant_id), pg_catalog.array_agg(g.growth)
          INTO tenant_ids, added
          FROM (SELECT o.tenant_id, pg_catalog.sum(d.n)::bigint AS growth
                  FROM (SELECT organization_id, 1 AS n FROM new_projects
                        UNION ALL
                        SELECT organization_id, -1 FROM old_projects) AS d
                  JOIN public.organizations AS o ON o.id = d.organization_id
                 GROUP BY o.tenant_id
                HAVING pg_catalog.sum(d.n) > 0) AS g;
    END IF;

    -- unnest() of several arrays is FROM-clause syntax that cannot be
    -- schema-qualified; the pinned search_path resolves it to pg_catalog.
    FOR tenant IN
        SELECT t.id, t.slug, t.max_projects, a.growth
          FROM public.tenants AS t
          JOIN unnest(tenant_ids, added) AS a (tenant_id, growth)
            ON a.tenant_id = t.id
         ORDER BY t.id
           FOR NO KEY UPDATE OF t
    LOOP
        -- A new statement, so (in READ COMMITTED) a new snapshot taken after
        -- the lock: it sees every committed project plus this statement's.
        SELECT pg_catalog.count(*)
          INTO total
          FROM public.projects AS p
          JOIN public.organizations AS o ON o.id = p.organization_id
         WHERE o.tenant_id = tenant.id;
        IF total > tenant.max_projects THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                CONSTRAINT = 'tenant_max_projects',
                MESSAGE = pg_catalog.format(
                    'tenant %s: project limit reached (max_projects %s, %s in use, creating %s more)',
                    tenant.slug, tenant.max_projects, total - tenant.growth, tenant.growth),
                DETAIL = 'The limit counts the projects of every organization of the tenant.',
                HINT = 'Delete projects that are no longer needed, or raise the tenant''s max_projects.';
        END IF;
    END LOOP;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

COMMENT ON FUNCTION projects_enforce_tenant_max_projects() IS
    'Statement trigger: refuses projects beyond tenants.max_projects, counted over all organizations of the tenant.';

CREATE TRIGGER projects_tenant_max_projects_insert
    AFTER INSERT ON projects
    REFERENCING NEW TABLE AS new_projects
    FOR EACH STATEMENT
    EXECUTE FUNCTION projects_enforce_tenant_max_projects();

-- A trigger with transition tables may have only one event, hence two.
CREATE TRIGGER projects_tenant_max_projects_update
    AFTER UPDATE ON projects
    REFERENCING OLD TABLE AS old_projects NEW TABLE AS new_projects
    FOR EACH STATEMENT
    EXECUTE FUNCTION projects_enforce_tenant_max_projects();

-- ---------------------------------------------------------------------------
-- max_lines_of_code: sum of source_files.line_count across all organizations
-- of a tenant. INSERT, and UPDATE (a larger line_count, or a file moved into
-- another tenant). Per-row checks would re-sum the tenant for every row of a
-- bulk import (quadratic); per statement it is one sum.
-- ---------------------------------------------------------------------------
CREATE FUNCTION source_files_enforce_tenant_max_lines() RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    tenant_ids bigint[];
    added      bigint[];
    tenant     record;
    total      bigint;
BEGIN
    -- Growth per tenant, from this statement's rows only (see above).
    IF TG_OP = 'INSERT' THEN
        SELECT pg_catalog.array_agg(g.tenant_id), pg_catalog.array_agg(g.growth)
          INTO tenant_ids, added
          FROM (SELECT o.tenant_id, pg_catalog.sum(f.line_count)::bigint AS growth
                  FROM new_files AS f
                  JOIN public.organizations AS o ON o.id = f.organization_id
                 GROUP BY o.tenant_id
                HAVING pg_catalog.sum(f.line_count) > 0) AS g;
    ELSE
        SELECT pg_catalog.array_agg(g.tenant_id), pg_catalog.array_agg(g.growth)
          INTO tenant_ids, added
          FROM (SELECT o.tenant_id, pg_catalog.sum(d.lines)::bigint AS growth
                  FROM (SELECT organization_id, line_count::bigint AS lines FROM new_files
                        UNION ALL
                        SELECT organization_id, -line_count::bigint FROM old_files) AS d
                  JOIN public.organizations AS o ON o.id = d.organization_id
                 GROUP BY o.tenant_id
                HAVING pg_catalog.sum(d.lines) > 0) AS g;
    END IF;

    FOR tenant IN
        SELECT t.id, t.slug, t.max_lines_of_code, a.growth
          FROM public.tenants AS t
          JOIN unnest(tenant_ids, added) AS a (tenant_id, growth)
            ON a.tenant_id = t.id
         ORDER BY t.id
           FOR NO KEY UPDATE OF t
    LOOP
        -- New statement, new snapshot after the lock (see above).
        SELECT COALESCE(pg_catalog.sum(f.line_count), 0)
          INTO total
          FROM public.source_files AS f
          JOIN public.organizations AS o ON o.id = f.organization_id
         WHERE o.tenant_id = tenant.id;
        IF total > tenant.max_lines_of_code THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                CONSTRAINT = 'tenant_max_lines_of_code',
                MESSAGE = pg_catalog.format(
                    'tenant %s: source line limit exceeded (max_lines_of_code %s, %s stored, this change adds %s)',
                    tenant.slug, tenant.max_lines_of_code, total - tenant.growth, tenant.growth),
                DETAIL = 'The limit counts the source lines of every organization of the tenant.',
                HINT = 'Delete source files that are no longer needed, or raise the tenant''s max_lines_of_code.';
        END IF;
    END LOOP;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

COMMENT ON FUNCTION source_files_enforce_tenant_max_lines() IS
    'Statement trigger: refuses source lines beyond tenants.max_lines_of_code, summed over all organizations of the tenant.';

CREATE TRIGGER source_files_tenant_max_lines_insert
    AFTER INSERT ON source_files
    REFERENCING NEW TABLE AS new_files
    FOR EACH STATEMENT
    EXECUTE FUNCTION source_files_enforce_tenant_max_lines();

CREATE TRIGGER source_files_tenant_max_lines_update
    AFTER UPDATE ON source_files
    REFERENCING OLD TABLE AS old_files NEW TABLE AS new_files
    FOR EACH STATEMENT
    EXECUTE FUNCTION source_files_enforce_tenant_max_lines();

COMMENT ON TABLE tenants IS
    'Billing/subscription unit; holds plan limits. max_projects and max_lines_of_code are enforced by triggers (V0010).';

-- ===========================================================================
-- 3. Privileges
-- ===========================================================================
-- Triggers fire for every role that writes the table, migrationpilot_app
-- included: EXECUTE on a trigger function is checked only when the trigger
-- is created (by the owner, here), never when it fires. So the limit
-- functions need no grant, and EXECUTE is revoked from PUBLIC on the two
-- SECURITY DEFINER ones (the usual hygiene for definer functions; a trigger
-- function cannot be called directly anyway).
REVOKE EXECUTE ON FUNCTION projects_enforce_tenant_max_projects() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION source_files_enforce_tenant_max_lines() FROM PUBLIC;

-- The CLI, acting as a user, calls this to list a project's next states.
-- PUBLIC may already execute it; granted explicitly so that the app keeps
-- it where PUBLIC's default EXECUTE has been revoked.
GRANT EXECUTE ON FUNCTION project_allowed_transitions(project_status, project_status)
    TO migrationpilot_app;
