-- V0009: row level security and privileges of the application role.
--
-- Who is who:
--   * The migration owner owns every object. RLS is ENABLEd but NOT FORCEd,
--     so the owner (operator scripts, retention purge, onboarding of new
--     tenants/organizations/users) is not filtered.
--   * migrationpilot_app (V0001) owns nothing. The CLI runs its work as this
--     role (login as a member, or SET ROLE) after
--         SELECT set_config('app.current_user_id', '<users.id>', false);
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
-- No sequence grants are needed: identity columns draw their values without
-- a USAGE check on the underlying sequence.
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
-- Versions are written by the versioning trigger as its owner (V0005), never by clients.
GRANT SELECT ON rule_versions TO migrationpilot_app;
