-- V0015: project teams. Who works on a project, in which role, and how many people a project
-- may have (the tenant's max_users_per_project, which until now meant nothing).
--
--   * project_members: a user of the project's organization, with a project role (viewer,
--     developer, reviewer or architect; filled with the user's organization role when an
--     insert leaves it out, an admin's as architect).
--   * A member acts in the project with the lower of the project role and their organization
--     role (users.role); an organization's admins act on every project of the organization.
--     Anyone else of the organization still reads the project (isolation is by organization)
--     but changes nothing in it: source files, rules (import, edit, review, delete), test
--     cases, generated files, routing rules, the project itself, its members.
--   * Enforced here, for every client acting as a user: AFTER statement triggers over the
--     transition tables the audit triggers (V0012) collect anyway, so a statement of 100,000
--     rows costs one pass over the projects it touched and one lookup per project, never a
--     lookup per row. They run where row level security runs (the app role); the owner, and
--     the owner's cascades and definer triggers, are not checked, as for the user roles (V0009).
--     The organization role is still checked first and before any work (V0009's BEFORE
--     triggers), so a viewer hears that a developer is needed, as before.
--   * The creator of a project becomes its first architect member (created_by, else the acting
--     user).
--   * max_users_per_project is counted per project when members are added, serialized by a lock
--     on the project row: concurrent additions cannot pass the limit together. Lowering the
--     limit keeps the members a project has and refuses new ones.
--   * Existing projects keep today's permissions: every user of the organization but its admins
--     becomes a member with their organization role (the creator as architect). This backfill is
--     not held to the limit, not audited (the migration is recorded in the schema history), and
--     a project it leaves above the limit keeps those members.
--
-- squawk-ignore-file require-concurrent-index-creation
-- (The one index is on the table this file creates.)

-- ---------------------------------------------------------------------------
-- The table.
-- ---------------------------------------------------------------------------
CREATE TABLE project_members (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid        NOT NULL,
    project_id       uuid        NOT NULL,
    user_id          uuid        NOT NULL,
    -- The project role: what the member may do in this project, within their organization
    -- role. Never admin: an organization's admins act on every project without a membership.
    role             user_role   NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT project_members_role_check CHECK (role <> 'admin'),
    -- One membership per user and project. organization_id leads (see source_files, V0004):
    -- a duplicate can then only be met within one's own organization; the prefix serves the
    -- project foreign key, and the whole key the lookup of an acting user's project role.
    CONSTRAINT project_members_organization_id_project_id_user_id_key
        UNIQUE (organization_id, project_id, user_id),
    CONSTRAINT project_members_project_fkey
        FOREIGN KEY (organization_id, project_id)
        REFERENCES projects (organization_id, id)
        ON DELETE CASCADE,
    -- A member is a user of the project's organization; the account's removal ends its
    -- memberships (an address taken again later inherits none).
    CONSTRAINT project_members_user_fkey
        FOREIGN KEY (organization_id, user_id)
        REFERENCES users (organization_id, id)
        ON DELETE CASCADE
);

-- The user foreign key's index (an account's removal), and a user's projects.
CREATE INDEX project_members_organization_id_user_id_idx
    ON project_members (organization_id, user_id);

COMMENT ON TABLE project_members IS
    'Who works on a project, with a project role; the lower of it and users.role applies (V0015).';

CREATE TRIGGER project_members_set_updated_at
    BEFORE UPDATE ON project_members
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- What an insert may leave out, as for every project child (docs/schema.md, "Filled by the
-- database"): the organization from the project (caller's rights: a project out of sight is no
-- project), the role from the user's organization role (an admin's as architect).
CREATE FUNCTION project_members_fill() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.organization_id := coalesce(NEW.organization_id,
                                    public.organization_of_project('project_members', NEW.project_id));
    IF NEW.role IS NULL THEN
        NEW.role := (SELECT CASE WHEN u.role = 'admin' THEN 'architect' ELSE u.role END
                       FROM public.users AS u WHERE u.id = NEW.user_id);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER project_members_fill
    BEFORE INSERT ON project_members
    FOR EACH ROW
    WHEN (NEW.organization_id IS NULL OR NEW.role IS NULL)
    EXECUTE FUNCTION project_members_fill();

-- A membership is one user's in one project: changing either is removing it and adding another
-- (which the limit then counts). The role may change; the organization is the policy's and the
-- foreign keys' to refuse.
CREATE FUNCTION project_members_keep_identity() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        CONSTRAINT = 'project_members_identity_kept',
        MESSAGE = 'a membership keeps its project and user; remove it and add another instead';
END
$$;

CREATE TRIGGER project_members_keep_identity
    BEFORE UPDATE ON project_members
    FOR EACH ROW
    WHEN (NEW.project_id IS DISTINCT FROM OLD.project_id OR NEW.user_id IS DISTINCT FROM OLD.user_id)
    EXECUTE FUNCTION project_members_keep_identity();

-- ---------------------------------------------------------------------------
-- Row level security and grants: an organization's memberships, for its users (V0009). Who may
-- change them is the triggers' business below.
-- ---------------------------------------------------------------------------
ALTER TABLE project_members ENABLE ROW LEVEL SECURITY;

CREATE POLICY project_members_isolation ON project_members
    AS PERMISSIVE FOR ALL TO migrationpilot_app
    USING (organization_id = (SELECT current_organization_id()))
    WITH CHECK (organization_id = (SELECT current_organization_id()));

GRANT SELECT, INSERT, UPDATE, DELETE ON project_members TO migrationpilot_app;

-- ---------------------------------------------------------------------------
-- The acting user's role in a project: admin for an organization's admins, else the lower of
-- the member's project role and organization role, NULL for someone who is not a member (or
-- no acting user). The enum runs from admin to viewer, so the lower role is the greater value.
-- SECURITY DEFINER for the same reason as current_user_role() (V0009); it reads only the
-- acting user's own membership.
-- ---------------------------------------------------------------------------
CREATE FUNCTION current_project_role(project uuid) RETURNS user_role
    LANGUAGE sql
    STABLE
    PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT CASE WHEN acting.role = 'admin' THEN acting.role
                WHEN m.role IS NOT NULL THEN GREATEST(acting.role, m.role) END
      FROM (SELECT public.current_user_role() AS role,
                   public.current_organization_id() AS organization_id) AS acting
      LEFT JOIN public.project_members AS m
             ON m.organization_id = acting.organization_id
            AND m.project_id = current_project_role.project
            AND m.user_id = public.current_user_id()
$$;

COMMENT ON FUNCTION current_project_role(uuid) IS
    'The acting user''s role in a project: admin for admins, else the lower of project and organization role; NULL for a non-member.';

-- Raise 42501 unless the acting user has at least `needed` in every project of `projects` (its
-- organization's; others are row level security's business). No acting user, or an admin:
-- returns at once. The refusal names the first project, by name, and how to get in.
CREATE FUNCTION require_project_role(projects uuid[], needed user_role, action text)
    RETURNS void
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    acting_role public.user_role := public.current_user_role();
    refused     record;
BEGIN
    IF acting_role IS NULL OR acting_role = 'admin' THEN
        RETURN;
    END IF;
    SELECT p.id, p.name, m.role AS member_role, o.slug
      INTO refused
      FROM public.projects AS p
      JOIN public.organizations AS o ON o.id = p.organization_id
      LEFT JOIN public.project_members AS m
             ON m.organization_id = p.organization_id AND m.project_id = p.id
            AND m.user_id = public.current_user_id()
     WHERE p.id = ANY (require_project_role.projects)
       AND p.organization_id = public.current_organization_id()
       AND (m.role IS NULL OR GREATEST(acting_role, m.role) > needed)
     ORDER BY p.name, p.id
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = pg_catalog.format('%s role in project %s required to %s (%s)',
                                    needed, refused.name, action,
                                    CASE WHEN refused.member_role IS NULL
                                         THEN 'you are not a member of it'
                                         ELSE pg_catalog.format('you are %s in it',
                                                                GREATEST(acting_role, refused.member_role))
                                    END),
        HINT = pg_catalog.format('A project architect or an admin of %s can %s: migrationpilot projects members %s %s %s --role %s',
                                 refused.slug,
                                 CASE WHEN refused.member_role IS NULL THEN 'add you' ELSE 'change your role' END,
                                 CASE WHEN refused.member_role IS NULL THEN 'add' ELSE 'set' END,
                                 refused.id, public.current_user_email(), needed);
END
$$;

COMMENT ON FUNCTION require_project_role(uuid[], user_role, text) IS
    'Raises 42501 unless the acting user has at least `needed` in each project (admins always do); no-op without an acting user.';

-- ---------------------------------------------------------------------------
-- The gate. Arguments: the role needed, the action as messages word it, and the column naming
-- the project ('id' on projects).
--   * On the tables of a project's work, a statement-level AFTER trigger over the transition
--     tables: one pass over the statement's rows for the projects it touched, then one lookup.
--   * Where the statement changes who may change the project (its team, or the project itself,
--     whose deletion takes its team along), a row-level BEFORE trigger, so that the acting
--     user's role is the one they had before the change: an architect may leave the team or
--     delete the project. These tables are small and their statements few.
-- STABLE: it reads with the snapshot of the statement that fires it, so a row trigger sees the
-- team as it was before the statement, not as its earlier rows left it (an architect removing
-- the whole team, themselves among it, is checked against the team they were on).
-- SECURITY INVOKER, like enforce_user_role (V0009): row_security_active() must see the caller.
-- Dynamic only in that column's name and in which transition tables exist (trigger arguments
-- and TG_OP, never input).
-- ---------------------------------------------------------------------------
CREATE FUNCTION enforce_project_role() RETURNS trigger
    LANGUAGE plpgsql
    STABLE
AS $$
DECLARE
    acting_role public.user_role;
    changed     record;
    touched     uuid[];
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        changed := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF NOT pg_catalog.row_security_active(TG_RELID) THEN
        RETURN changed;
    END IF;
    acting_role := public.current_user_role();
    IF acting_role IS NULL OR acting_role = 'admin' THEN
        RETURN changed;  -- no acting user (row level security refuses every row), or an admin
    END IF;
    IF TG_LEVEL = 'ROW' THEN
        touched := ARRAY[(pg_catalog.to_jsonb(changed) ->> TG_ARGV[2])::uuid];
    ELSE
        EXECUTE pg_catalog.format(
            'SELECT pg_catalog.array_agg(t.project) FROM (SELECT DISTINCT project FROM (%s) AS s) AS t',
            CASE TG_OP
                WHEN 'INSERT' THEN pg_catalog.format('SELECT %I AS project FROM new_rows', TG_ARGV[2])
                WHEN 'DELETE' THEN pg_catalog.format('SELECT %I AS project FROM old_rows', TG_ARGV[2])
                ELSE pg_catalog.format('SELECT %1$I AS project FROM new_rows'
                                       ' UNION ALL SELECT %1$I FROM old_rows', TG_ARGV[2])
            END)
          INTO touched;
    END IF;
    PERFORM public.require_project_role(touched, TG_ARGV[0]::public.user_role, TG_ARGV[1]);
    RETURN changed;  -- NULL for a statement trigger (ignored); the row for a row trigger
END
$$;

COMMENT ON FUNCTION enforce_project_role() IS
    'Trigger (role, action, project column): refuses unless the acting user has that role in every project the statement (or row) touches; only where RLS applies.';

-- The triggers, made from this list (as the audit triggers of V0012). Named
-- <table>_access_<event>: AFTER triggers fire in name order, so the gate runs before the audit
-- (<table>_audit_*) and the tenant limits (<table>_tenant_*) of the same statement.
-- business_rules' inserts and updates are gated by business_rules_enforce_user_role (below),
-- which tells review decisions apart.
DO $$
DECLARE
    gated record;
BEGIN
    FOR gated IN
        SELECT *
          FROM (VALUES
              -- table            events                          per          role         action                                     column
              ('source_files',    '{INSERT,UPDATE,DELETE}'::text[], 'statement', 'developer', 'import or change source files',         'project_id'),
              ('generated_files', '{INSERT,UPDATE,DELETE}',       'statement', 'developer', 'import or change generated files',      'project_id'),
              ('test_cases',      '{INSERT,UPDATE,DELETE}',       'statement', 'developer', 'import or change test cases',           'project_id'),
              ('business_rules',  '{DELETE}',                     'statement', 'developer', 'delete rules',                          'project_id'),
              ('routing_rules',   '{INSERT,UPDATE,DELETE}',       'statement', 'architect', 'change routing rules',                  'project_id'),
              ('projects',        '{UPDATE}',                     'statement', 'architect', 'change a project''s status or settings', 'id'),
              ('projects',        '{DELETE}',                     'row',       'architect', 'delete projects',                       'id'),
              ('project_members', '{INSERT,UPDATE,DELETE}',       'row',       'architect', 'manage project members',                'project_id')
          ) AS g (tablename, events, per, needed, action, project_column),
          unnest(g.events) AS e (event)
    LOOP
        EXECUTE format('CREATE TRIGGER %I %s %s ON %I %s'
                       ' FOR EACH %s EXECUTE FUNCTION enforce_project_role(%L, %L, %L)',
                       gated.tablename || '_access_' || lower(gated.event),
                       CASE gated.per WHEN 'row' THEN 'BEFORE' ELSE 'AFTER' END,
                       gated.event, gated.tablename,
                       CASE WHEN gated.per = 'row' THEN ''
                            WHEN gated.event = 'INSERT' THEN 'REFERENCING NEW TABLE AS new_rows'
                            WHEN gated.event = 'DELETE' THEN 'REFERENCING OLD TABLE AS old_rows'
                            ELSE 'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                       END,
                       upper(gated.per), gated.needed, gated.action, gated.project_column);
    END LOOP;
END
$$;

-- The organization role first and before any work, as for every other table (V0009): managing a
-- project's team is an architect's.
CREATE TRIGGER project_members_user_role
    BEFORE INSERT OR UPDATE OR DELETE ON project_members
    FOR EACH STATEMENT EXECUTE FUNCTION enforce_user_role('architect', 'manage project members');

-- ---------------------------------------------------------------------------
-- business_rules: V0009's check, per project. One pass over the statement's rules groups them by
-- project and tells, per project, whether the statement decides a review there (the same test as
-- before); the organization role is asked first (so its message is the one a developer who
-- approves reads), then the project role: reviewer where the statement decides, developer
-- elsewhere, and developer in the project a rule leaves. For an admin, as before for a reviewer,
-- it is one role lookup and nothing else.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION business_rules_enforce_user_role() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    acting_role public.user_role;
    deciding    uuid[];
    editing     uuid[];
BEGIN
    IF NOT pg_catalog.row_security_active(TG_RELID) THEN
        RETURN NULL;
    END IF;
    acting_role := public.current_user_role();
    IF acting_role IS NULL OR acting_role = 'admin' THEN
        RETURN NULL;  -- no acting user (RLS refused every row already), or an admin
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT pg_catalog.array_agg(g.project_id) FILTER (WHERE g.decides),
               pg_catalog.array_agg(g.project_id) FILTER (WHERE NOT g.decides)
          INTO deciding, editing
          FROM (SELECT n.project_id,
                       pg_catalog.bool_or(n.review_status IN ('approved', 'rejected')
                                          OR n.reviewed_by IS NOT NULL) AS decides
                  FROM new_rules AS n
                 GROUP BY n.project_id) AS g;
    ELSE
        SELECT pg_catalog.array_agg(DISTINCT g.project_id) FILTER (WHERE g.decides),
               pg_catalog.array_agg(DISTINCT g.project_id) FILTER (WHERE NOT g.decides)
                   || pg_catalog.array_agg(DISTINCT g.old_project_id)
                          FILTER (WHERE g.old_project_id <> g.project_id)
          INTO deciding, editing
          FROM (SELECT n.project_id, o.project_id AS old_project_id,
                       pg_catalog.bool_or(
                           (n.review_status, n.reviewed_by, n.reviewed_at, n.review_comments)
                           IS DISTINCT FROM
                           (o.review_status, o.reviewed_by, o.reviewed_at, o.review_comments)
                           AND (n.review_status IN ('approved', 'rejected')
                                OR n.reviewed_by IS NOT NULL)) AS decides
                  FROM new_rules AS n
                  JOIN old_rules AS o ON o.id = n.id
                 GROUP BY n.project_id, o.project_id) AS g;
    END IF;
    IF deciding IS NOT NULL THEN
        PERFORM public.require_user_role('reviewer', 'review rules');
    ELSIF editing IS NOT NULL THEN
        PERFORM public.require_user_role('developer', 'import or edit rules');
    END IF;
    PERFORM public.require_project_role(deciding, 'reviewer', 'review rules');
    PERFORM public.require_project_role(editing, 'developer', 'import or edit rules');
    RETURN NULL;
END
$$;

-- ---------------------------------------------------------------------------
-- max_users_per_project. AFTER INSERT, per statement: for each project the statement adds
-- members to, in project id order (no deadlock between two statements adding to the same
-- projects), lock the project row FOR NO KEY UPDATE, then count its members in a new statement,
-- i.e. (READ COMMITTED) a new snapshot that sees every addition committed while this one waited:
-- twenty concurrent additions of one member each to a project with room for ten leave exactly
-- ten. NO KEY UPDATE does not block the foreign-key checks that rows of the project take (KEY
-- SHARE), so imports into the project go on meanwhile. SERIALIZABLE ends the same race in a
-- serialization failure; REPEATABLE READ counts with its own snapshot and is not protected, as
-- for the tenant limits of V0004. Only additions are counted: a project whose limit was lowered
-- below its team keeps it, and its members may still change roles or leave.
-- SECURITY DEFINER: the count covers every member, and the lock and the tenant's limit are read
-- past the app role's grants (as V0004's limits).
-- ---------------------------------------------------------------------------
CREATE FUNCTION project_members_enforce_tenant_limit() RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    grown record;
    total bigint;
BEGIN
    FOR grown IN
        SELECT p.id, p.organization_id, p.name, t.slug AS tenant, t.max_users_per_project,
               g.growth
          FROM (SELECT n.project_id, pg_catalog.count(*) AS growth
                  FROM new_rows AS n GROUP BY n.project_id) AS g
          JOIN public.projects AS p ON p.id = g.project_id
          JOIN public.organizations AS o ON o.id = p.organization_id
          JOIN public.tenants AS t ON t.id = o.tenant_id
         ORDER BY p.id
           FOR NO KEY UPDATE OF p
    LOOP
        -- A new statement, so (in READ COMMITTED) a new snapshot taken after the lock.
        SELECT pg_catalog.count(*) INTO total
          FROM public.project_members AS m
         WHERE m.organization_id = grown.organization_id AND m.project_id = grown.id;
        IF total > grown.max_users_per_project THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                CONSTRAINT = 'tenant_max_users_per_project',
                MESSAGE = pg_catalog.format(
                    'project %s has %s of %s members%s; raise the tenant''s max_users_per_project',
                    grown.name, total - grown.growth, grown.max_users_per_project,
                    CASE WHEN grown.growth > 1
                         THEN pg_catalog.format(', no room for %s more', grown.growth) END),
                HINT = pg_catalog.format('An operator can raise it: migrationpilot tenants set %s --max-users-per-project N; or remove members who no longer work on the project.',
                                         grown.tenant);
        END IF;
    END LOOP;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

COMMENT ON FUNCTION project_members_enforce_tenant_limit() IS
    'Statement trigger: refuses members beyond tenants.max_users_per_project, counted per project under a lock of the project row.';

-- ---------------------------------------------------------------------------
-- The creator of a project becomes its first architect member: created_by, else the acting
-- user, when that is a user of the project's organization. Per statement, one INSERT ... SELECT;
-- as the owner, so the membership is the database's doing (not held to the gate, which the
-- creator could not pass yet; held to the limit like any other).
-- ---------------------------------------------------------------------------
CREATE FUNCTION projects_add_creator() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO public.project_members (organization_id, project_id, user_id, role)
    SELECT p.organization_id, p.id, u.id, 'architect'
      FROM new_projects AS p
      JOIN public.users AS u
        ON u.id = coalesce(p.created_by, public.current_user_id())
       AND u.organization_id = p.organization_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

-- ---------------------------------------------------------------------------
-- Today's users keep today's permissions (see the header). Before the triggers that follow, so
-- that the backfill is neither held to the limit nor audited.
-- ---------------------------------------------------------------------------
INSERT INTO project_members (organization_id, project_id, user_id, role)
SELECT p.organization_id, p.id, u.id,
       CASE WHEN u.id = p.created_by THEN 'architect' ELSE u.role END
  FROM projects AS p
  JOIN users AS u ON u.organization_id = p.organization_id
 WHERE u.role <> 'admin' OR u.id = p.created_by;

CREATE TRIGGER project_members_tenant_max_users_insert
    AFTER INSERT ON project_members
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION project_members_enforce_tenant_limit();

-- After projects_audit_insert (name order): the project's audit row comes before its first
-- member's.
CREATE TRIGGER projects_creator_membership
    AFTER INSERT ON projects
    REFERENCING NEW TABLE AS new_projects
    FOR EACH STATEMENT EXECUTE FUNCTION projects_add_creator();

-- Audited by the database like every table of business data (V0012): a row per change, with
-- its old and new values.
CREATE TRIGGER project_members_audit_insert AFTER INSERT ON project_members
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit_changes('project_member', 'rows');
CREATE TRIGGER project_members_audit_update AFTER UPDATE ON project_members
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit_changes('project_member', 'rows');
CREATE TRIGGER project_members_audit_delete AFTER DELETE ON project_members
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit_changes('project_member', 'rows');

-- ---------------------------------------------------------------------------
-- Privileges: V0011's default privileges keep every new function from PUBLIC. The app role gets
-- what its triggers (SECURITY INVOKER) and the CLI's queries call; trigger functions need no
-- grant.
-- ---------------------------------------------------------------------------
GRANT EXECUTE ON FUNCTION
    current_project_role(uuid),
    require_project_role(uuid[], user_role, text)
    TO migrationpilot_app;
