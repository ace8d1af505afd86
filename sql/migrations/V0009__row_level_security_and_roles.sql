-- V0009: row level security, the privileges of the application role, and the user roles
-- (what each role of an organization may do), all enforced by the database.
--
-- Who is who:
--   * The migration owner owns every object. RLS is ENABLEd but NOT FORCEd,
--     so the owner (operator scripts, retention purge, onboarding of new
--     tenants/organizations/users) is not filtered.
--   * migrationpilot_app (V0001) owns nothing. The CLI, and any application
--     acting for a user, runs its work as this role inside a transaction:
--         SET LOCAL ROLE migrationpilot_app;
--         SELECT set_config('app.current_user_id', '<users.id>', true);
--     and then sees and writes only rows of that user's organization.
--
-- Policies apply TO migrationpilot_app only; any other non-owner role has
-- no grants and sees nothing anyway (RLS enabled + no policy = no rows).
--
-- current_organization_id() is wrapped in a scalar sub-select so the planner
-- evaluates it once per statement (an InitPlan) instead of once per row.
-- When no acting user is set it is NULL, `organization_id = NULL` is never
-- true, and the session simply sees nothing and can write nothing: no error.
--
-- FOR ALL with identical USING and WITH CHECK: rows can be neither read,
-- inserted into, nor moved (UPDATE ... SET organization_id) to another
-- organization.

-- ---------------------------------------------------------------------------
-- Enable RLS (every table: tenancy tables and tenant-owned tables).
-- ---------------------------------------------------------------------------
ALTER TABLE tenants          ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations    ENABLE ROW LEVEL SECURITY;
ALTER TABLE users            ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects         ENABLE ROW LEVEL SECURITY;
ALTER TABLE source_files     ENABLE ROW LEVEL SECURITY;
ALTER TABLE business_rules   ENABLE ROW LEVEL SECURITY;
ALTER TABLE rule_versions    ENABLE ROW LEVEL SECURITY;
ALTER TABLE generated_files  ENABLE ROW LEVEL SECURITY;
ALTER TABLE test_cases       ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_logs       ENABLE ROW LEVEL SECURITY;
ALTER TABLE routing_rules    ENABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------
-- Tenancy tables: read-only for the app, and only its own row.
-- ---------------------------------------------------------------------------
CREATE POLICY tenants_isolation ON tenants
    AS PERMISSIVE FOR SELECT TO migrationpilot_app
    USING (id = (SELECT current_tenant_id()));

CREATE POLICY organizations_isolation ON organizations
    AS PERMISSIVE FOR SELECT TO migrationpilot_app
    USING (id = (SELECT current_organization_id()));

-- users: the app manages users of its own organization. No recursion:
-- current_organization_id() is SECURITY DEFINER and reads users as owner.
CREATE POLICY users_isolation ON users
    AS PERMISSIVE FOR ALL TO migrationpilot_app
    USING (organization_id = (SELECT current_organization_id()))
    WITH CHECK (organization_id = (SELECT current_organization_id()));

-- ---------------------------------------------------------------------------
-- Tenant-owned tables.
-- ---------------------------------------------------------------------------
CREATE POLICY projects_isolation ON projects
    AS PERMISSIVE FOR ALL TO migrationpilot_app
    USING (organization_id = (SELECT current_organization_id()))
    WITH CHECK (organization_id = (SELECT current_organization_id()));

CREATE POLICY source_files_isolation ON source_files
    AS PERMISSIVE FOR ALL TO migrationpilot_app
    USING (organization_id = (SELECT current_organization_id()))
    WITH CHECK (organization_id = (SELECT current_organization_id()));

CREATE POLICY business_rules_isolation ON business_rules
    AS PERMISSIVE FOR ALL TO migrationpilot_app
    USING (organization_id = (SELECT current_organization_id()))
    WITH CHECK (organization_id = (SELECT current_organization_id()));

-- FOR ALL although the app may only SELECT/INSERT here: the grants below
-- make it append-only, the policy only decides which organization.
CREATE POLICY rule_versions_isolation ON rule_versions
    AS PERMISSIVE FOR ALL TO migrationpilot_app
    USING (organization_id = (SELECT current_organization_id()))
    WITH CHECK (organization_id = (SELECT current_organization_id()));

CREATE POLICY generated_files_isolation ON generated_files
    AS PERMISSIVE FOR ALL TO migrationpilot_app
    USING (organization_id = (SELECT current_organization_id()))
    WITH CHECK (organization_id = (SELECT current_organization_id()));

CREATE POLICY test_cases_isolation ON test_cases
    AS PERMISSIVE FOR ALL TO migrationpilot_app
    USING (organization_id = (SELECT current_organization_id()))
    WITH CHECK (organization_id = (SELECT current_organization_id()));

-- An audit row written by a user must also name the user's own tenant.
CREATE POLICY audit_logs_isolation ON audit_logs
    AS PERMISSIVE FOR ALL TO migrationpilot_app
    USING (organization_id = (SELECT current_organization_id()))
    WITH CHECK (organization_id = (SELECT current_organization_id())
                AND tenant_id = (SELECT current_tenant_id()));

CREATE POLICY routing_rules_isolation ON routing_rules
    AS PERMISSIVE FOR ALL TO migrationpilot_app
    USING (organization_id = (SELECT current_organization_id()))
    WITH CHECK (organization_id = (SELECT current_organization_id()));

-- ---------------------------------------------------------------------------
-- Privileges. Explicit per table (no ALTER DEFAULT PRIVILEGES): a later
-- migration adding a table must decide its grants deliberately.
-- ---------------------------------------------------------------------------
GRANT USAGE ON SCHEMA public TO migrationpilot_app;

-- Tenancy is provisioned by the operator (owner); the app only reads it.
GRANT SELECT ON tenants, organizations TO migrationpilot_app;

GRANT SELECT, INSERT, UPDATE, DELETE
    ON users, projects, source_files, business_rules,
       generated_files, test_cases, routing_rules
    TO migrationpilot_app;

-- Append-only history: no UPDATE, DELETE or TRUNCATE for the app.
-- (Cascading deletes from business_rules and the retention purge run with
-- the owner's rights, which is intended.)
GRANT SELECT, INSERT ON audit_logs TO migrationpilot_app;
-- Versions are written by the versioning trigger as its owner (V0005); a client's row only
-- completes a version the database wrote (rule_versions_complete), never invents one.
GRANT SELECT, INSERT ON rule_versions TO migrationpilot_app;

-- Definer functions are for the app role, not for PUBLIC (PostgreSQL grants EXECUTE to
-- PUBLIC by default). Trigger functions need no grant: EXECUTE on them is checked when the
-- trigger is created, never when it fires.
REVOKE EXECUTE ON FUNCTION current_organization_id() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION current_tenant_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION current_organization_id() TO migrationpilot_app;
GRANT EXECUTE ON FUNCTION current_tenant_id() TO migrationpilot_app;
REVOKE EXECUTE ON FUNCTION organizations_fill_tenant() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION projects_fill_organization() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION projects_enforce_tenant_max_projects() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION source_files_enforce_tenant_max_lines() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION business_rules_record_versions() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION rule_versions_complete() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION audit_logs_fill() FROM PUBLIC;

-- The CLI, acting as a user, calls this to list a project's next states.
GRANT EXECUTE ON FUNCTION project_allowed_transitions(project_status, project_status)
    TO migrationpilot_app;

-- ===========================================================================
-- User roles
-- ===========================================================================
--
-- What each role of an organization may do (users.role, enum user_role of V0002):
--
--   role       read  import/edit   review  routing, project    manage
--                    (files, rules,  rules   status/settings,    users
--                    tests, code,            delete projects
--                    new projects)
--   viewer     yes
--   developer  yes   yes
--   reviewer   yes   yes           yes
--   architect  yes   yes           yes     yes
--   admin      yes   yes           yes     yes                 yes
--
-- Where it applies: exactly where row level security applies, i.e. to sessions
-- running as migrationpilot_app (the CLI's --as, or any psql session that SETs
-- ROLE to it). The owner (operator mode: migrations, tenancy, retention) is not
-- subject to RLS (not FORCEd) and not to these checks either. The trigger
-- functions ask pg_catalog.row_security_active() for their table, so they need
-- no list of role names and agree with RLS by construction; cascades from a
-- foreign key run as the table owner and so pass, as they pass RLS.
--
-- How: statement-level triggers, so every check costs one lookup of the acting
-- user per statement, never one per row (a review batch of 10,000 rules is one
-- check). A refused statement raises SQLSTATE 42501 (insufficient_privilege)
-- with a message that names the role needed, e.g.
--     reviewer role required to review rules (you are developer in acme-pay)
-- and, being an error, leaves nothing written. BEFORE triggers refuse before
-- any row is touched, and fire even when the statement would touch no row:
-- a viewer's write is an error, never a silent no-op.
--
-- With no acting user (app.current_user_id unset, empty or malformed) the
-- checks stand aside: such a session sees no organization, so the RLS policies
-- above already refuse every write (and it can read nothing).
--
-- Review decisions are a column-level distinction (a developer may edit a
-- rule's text, only a reviewer may approve it), checked per statement over the
-- transition tables that the versioning triggers of V0005 already collect.
--
-- The enum's order is admin < architect < reviewer < developer < viewer, so
-- "at least reviewer" is `role <= 'reviewer'`; the functions below keep that
-- inversion in one place.

-- ---------------------------------------------------------------------------
-- The acting user's role (NULL when there is none). SECURITY DEFINER for the
-- same reason as current_organization_id(): it reads users as its owner, so it
-- works (and does not recurse) inside the users table's own checks.
-- ---------------------------------------------------------------------------
CREATE FUNCTION current_user_role() RETURNS user_role
    LANGUAGE sql
    STABLE
    PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT u.role
      FROM public.users AS u
     WHERE u.id = public.current_user_id()
$$;

COMMENT ON FUNCTION current_user_role() IS
    'Role of the acting user in their organization (NULL when none). SECURITY DEFINER: reads users past RLS.';

-- Raise 42501 unless the acting user has at least role `needed`; `action` says
-- what they tried ("review rules"). No acting user: returns quietly (see the
-- header). Definer rights to read the user's organization slug for the message.
CREATE FUNCTION require_user_role(needed user_role, action text) RETURNS void
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    acting record;
BEGIN
    SELECT u.email, u.role, o.slug
      INTO acting
      FROM public.users AS u
      JOIN public.organizations AS o ON o.id = u.organization_id
     WHERE u.id = public.current_user_id();
    IF NOT FOUND OR acting.role <= needed THEN
        RETURN;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = pg_catalog.format('%s role required to %s (you are %s in %s)',
                                    needed, action, acting.role, acting.slug),
        HINT = pg_catalog.format('An admin of %s can change your role: migrationpilot users set-role %s %s',
                                 acting.slug, acting.email, needed);
END
$$;

COMMENT ON FUNCTION require_user_role(user_role, text) IS
    'Raises 42501 naming the role needed unless the acting user has at least `needed`; no-op without an acting user.';

-- ---------------------------------------------------------------------------
-- The generic check: a statement-level trigger with two arguments, the role
-- needed and what the statement does, e.g. ('developer', 'import source files').
-- SECURITY INVOKER on purpose: row_security_active() must see the caller.
-- ---------------------------------------------------------------------------
CREATE FUNCTION enforce_user_role() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF pg_catalog.row_security_active(TG_RELID) THEN
        PERFORM public.require_user_role(TG_ARGV[0]::public.user_role, TG_ARGV[1]);
    END IF;
    RETURN NULL;  -- statement trigger: return value ignored
END
$$;

COMMENT ON FUNCTION enforce_user_role() IS
    'Statement trigger (role, action): refuses the statement unless the acting user has at least that role; only where RLS applies.';

-- Imports and edits: developer and up.
CREATE TRIGGER source_files_user_role
    BEFORE INSERT OR UPDATE OR DELETE ON source_files
    FOR EACH STATEMENT EXECUTE FUNCTION enforce_user_role('developer', 'import or change source files');

CREATE TRIGGER test_cases_user_role
    BEFORE INSERT OR UPDATE OR DELETE ON test_cases
    FOR EACH STATEMENT EXECUTE FUNCTION enforce_user_role('developer', 'import or change test cases');

CREATE TRIGGER generated_files_user_role
    BEFORE INSERT OR UPDATE OR DELETE ON generated_files
    FOR EACH STATEMENT EXECUTE FUNCTION enforce_user_role('developer', 'import or change generated files');

CREATE TRIGGER business_rules_delete_user_role
    BEFORE DELETE ON business_rules
    FOR EACH STATEMENT EXECUTE FUNCTION enforce_user_role('developer', 'delete rules');

-- A project is where an import goes: creating one is a developer's step.
-- Moving it through the workflow, changing or deleting it is an architect's.
CREATE TRIGGER projects_insert_user_role
    BEFORE INSERT ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION enforce_user_role('developer', 'create projects');

CREATE TRIGGER projects_update_user_role
    BEFORE UPDATE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION enforce_user_role('architect', 'change a project''s status or settings');

CREATE TRIGGER projects_delete_user_role
    BEFORE DELETE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION enforce_user_role('architect', 'delete projects');

-- Routing moves live traffic: architect and up.
CREATE TRIGGER routing_rules_user_role
    BEFORE INSERT OR UPDATE OR DELETE ON routing_rules
    FOR EACH STATEMENT EXECUTE FUNCTION enforce_user_role('architect', 'change routing rules');

-- The people of an organization: its admins.
CREATE TRIGGER users_user_role
    BEFORE INSERT OR UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION enforce_user_role('admin', 'manage users');

-- ---------------------------------------------------------------------------
-- business_rules: developers import and edit, reviewers decide.
--
-- A row change is a review decision when it touches the review fields
-- (review_status, reviewed_by, reviewed_at, review_comments) and leaves the
-- rule approved, rejected, or signed by a reviewer (reviewed_by set). Two
-- changes of the review fields stay a developer's, because imports and
-- revalidation make them: reopening (back to pending, nobody signed) and
-- flagging (needs_clarification, nobody signed). An inserted rule counts as a
-- decision when it arrives approved, rejected or signed.
--
-- AFTER, per statement, over the transition tables (shared with the versioning
-- triggers of V0005, so collecting them costs nothing more). For a reviewer
-- and up it is one role lookup and nothing else. A viewer learns which role
-- the statement needed: reviewer when it decided a review, else developer.
-- The name sorts before business_rules_record_versions_*: AFTER triggers fire
-- in name order, so a refused statement is refused before versions are written.
-- ---------------------------------------------------------------------------
CREATE FUNCTION business_rules_enforce_user_role() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    acting_role public.user_role;
    decides     boolean;
BEGIN
    IF NOT pg_catalog.row_security_active(TG_RELID) THEN
        RETURN NULL;
    END IF;
    acting_role := public.current_user_role();
    IF acting_role IS NULL OR acting_role <= 'reviewer' THEN
        RETURN NULL;  -- no acting user (RLS refused every row already), or a reviewer and up
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT EXISTS (SELECT 1 FROM new_rules AS n
                        WHERE n.review_status IN ('approved', 'rejected')
                           OR n.reviewed_by IS NOT NULL)
          INTO decides;
    ELSE
        SELECT EXISTS (SELECT 1
                         FROM new_rules AS n
                         JOIN old_rules AS o ON o.id = n.id
                        WHERE (n.review_status, n.reviewed_by, n.reviewed_at, n.review_comments)
                              IS DISTINCT FROM
                              (o.review_status, o.reviewed_by, o.reviewed_at, o.review_comments)
                          AND (n.review_status IN ('approved', 'rejected')
                               OR n.reviewed_by IS NOT NULL))
          INTO decides;
    END IF;
    IF decides THEN
        PERFORM public.require_user_role('reviewer', 'review rules');
    ELSIF EXISTS (SELECT 1 FROM new_rules) THEN
        PERFORM public.require_user_role('developer', 'import or edit rules');
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION business_rules_enforce_user_role() IS
    'Statement trigger: rule imports and edits need developer, review decisions reviewer; only where RLS applies.';

CREATE TRIGGER business_rules_check_user_role_insert
    AFTER INSERT ON business_rules
    REFERENCING NEW TABLE AS new_rules
    FOR EACH STATEMENT EXECUTE FUNCTION business_rules_enforce_user_role();

CREATE TRIGGER business_rules_check_user_role_update
    AFTER UPDATE ON business_rules
    REFERENCING OLD TABLE AS old_rules NEW TABLE AS new_rules
    FOR EACH STATEMENT EXECUTE FUNCTION business_rules_enforce_user_role();

-- ---------------------------------------------------------------------------
-- Audit rows written by a user name that user: the actor columns cannot be
-- forged (another user's id or email, another database login). Restrictive,
-- so it adds to the organization check above; the sub-selects are InitPlans,
-- evaluated once per statement however many rows a batch writes.
-- ---------------------------------------------------------------------------
CREATE FUNCTION current_user_email() RETURNS text
    LANGUAGE sql
    STABLE
    PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT u.email
      FROM public.users AS u
     WHERE u.id = public.current_user_id()
$$;

COMMENT ON FUNCTION current_user_email() IS
    'Email of the acting user (NULL when none). SECURITY DEFINER: reads users past RLS.';

CREATE POLICY audit_logs_actor ON audit_logs
    AS RESTRICTIVE FOR INSERT TO migrationpilot_app
    WITH CHECK (user_id = (SELECT current_user_id())
                AND actor_email = (SELECT current_user_email())
                AND db_role = session_user);

-- ---------------------------------------------------------------------------
-- Privileges: the definer functions are for the app role, not for PUBLIC.
-- (Trigger functions need no EXECUTE grant: it is checked when the trigger is
-- created, never when it fires.)
-- ---------------------------------------------------------------------------
REVOKE EXECUTE ON FUNCTION current_user_role() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION require_user_role(user_role, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION current_user_email() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION current_user_role() TO migrationpilot_app;
GRANT EXECUTE ON FUNCTION require_user_role(user_role, text) TO migrationpilot_app;
GRANT EXECUTE ON FUNCTION current_user_email() TO migrationpilot_app;
