-- V0016: the whole life of a user. An account can be renamed, disabled, enabled again and
-- removed; what its person did stays readable with the name and email they had.
--
--   * Disabled (users.disabled_at): the account stays, with its memberships, but acts as nobody.
--     Every function that derives who is acting (current_organization_id(), current_tenant_id(),
--     current_user_role(), current_user_email(), require_user_role(), and through them every
--     policy and role check) treats a disabled user as no user: through the app role with a
--     disabled user's id set, nothing can be read or written. current_user_id() stays the raw
--     claim of the session (it is parsed per row in places, and grants nothing by itself).
--   * Removed (DELETE FROM users, whoever runs it): the account goes, with its memberships. The
--     person stays in `people`, a record of everyone who has had an account in an organization
--     (kept in step with users by triggers, marked removed_at when the account goes), and the
--     columns that name who did something (projects.created_by, business_rules.reviewed_by,
--     rule_versions.changed_by, audit_logs.user_id) now refer to people instead of users: they
--     keep the id, and the id keeps a name and an email. Until now they were cleared (ON DELETE
--     SET NULL). The email is free again; a new account under it is a new person, with none of
--     the old one's history or memberships.
--   * An organization always keeps an active admin: disabling, removing or demoting its last
--     one is refused (serialized per organization, so two admins cannot demote each other at
--     once). Deleting the organization itself is not held to it.

-- ---------------------------------------------------------------------------
-- Disabled accounts.
-- ---------------------------------------------------------------------------
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
ALTER TABLE users ADD COLUMN disabled_reason text;

COMMENT ON COLUMN users.disabled_at IS
    'When the account was disabled (NULL: active). A disabled user acts as nobody (V0016).';
COMMENT ON COLUMN users.disabled_reason IS
    'Why it was disabled (`users disable --reason`); only while disabled.';

-- A reason belongs to a disabled account; enabling it again clears both. The columns are new
-- and empty: the check reads the users table once (an organization's people, not its data).
ALTER TABLE users
    -- squawk-ignore constraint-missing-not-valid
    ADD CONSTRAINT users_disabled_reason_check
    CHECK (disabled_reason IS NULL OR disabled_at IS NOT NULL);

-- Who is acting: a disabled user is nobody. The same functions as V0003 and V0009 with one more
-- condition, so every policy and trigger that asks them follows.
CREATE OR REPLACE FUNCTION current_organization_id() RETURNS uuid
    LANGUAGE sql
    STABLE
    PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT u.organization_id
      FROM public.users AS u
     WHERE u.id = public.current_user_id() AND u.disabled_at IS NULL
$$;

CREATE OR REPLACE FUNCTION current_tenant_id() RETURNS uuid
    LANGUAGE sql
    STABLE
    PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT o.tenant_id
      FROM public.users AS u
      JOIN public.organizations AS o ON o.id = u.organization_id
     WHERE u.id = public.current_user_id() AND u.disabled_at IS NULL
$$;

CREATE OR REPLACE FUNCTION current_user_role() RETURNS user_role
    LANGUAGE sql
    STABLE
    PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT u.role
      FROM public.users AS u
     WHERE u.id = public.current_user_id() AND u.disabled_at IS NULL
$$;

CREATE OR REPLACE FUNCTION current_user_email() RETURNS text
    LANGUAGE sql
    STABLE
    PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT u.email
      FROM public.users AS u
     WHERE u.id = public.current_user_id() AND u.disabled_at IS NULL
$$;

CREATE OR REPLACE FUNCTION require_user_role(needed user_role, action text) RETURNS void
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
     WHERE u.id = public.current_user_id() AND u.disabled_at IS NULL;
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

-- ---------------------------------------------------------------------------
-- people: everyone who has had an account in an organization. The row of a live account
-- mirrors its email and name (the triggers below; a client never writes here); when the
-- account is removed the row stays, with removed_at, as the name and email its history
-- reads. Its id is the account's id, never taken again by a new account.
-- ---------------------------------------------------------------------------
CREATE TABLE people (
    id               uuid         PRIMARY KEY,
    organization_id  uuid         NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email            varchar(255) NOT NULL,
    name             varchar(255) NOT NULL,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    -- When the account was removed (NULL: it exists, in users).
    removed_at       timestamptz,

    -- Target of the composite foreign keys that name who did something: that person is of the
    -- row's organization. Its leading column serves the organization foreign key.
    CONSTRAINT people_organization_id_id_key UNIQUE (organization_id, id)
);

COMMENT ON TABLE people IS
    'Everyone who has had an account: the name and email the history of a removed user reads (V0016).';

CREATE TRIGGER people_set_updated_at
    BEFORE UPDATE ON people
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO people (id, organization_id, email, name, created_at)
SELECT id, organization_id, email, name, created_at FROM users;

-- Read by the app role (its organization's, as every table), written only by the triggers.
ALTER TABLE people ENABLE ROW LEVEL SECURITY;

CREATE POLICY people_isolation ON people
    AS PERMISSIVE FOR SELECT TO migrationpilot_app
    USING (organization_id = (SELECT current_organization_id()));

GRANT SELECT ON people TO migrationpilot_app;

-- Kept in step with users, per statement (transition tables), whoever changes users: a new
-- account is a new person (not under a removed person's id: that id is their history's); a
-- change of email or name is the person's; a removed account leaves its person, marked removed.
-- SECURITY DEFINER: the app role cannot write people.
CREATE FUNCTION users_record_people() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    taken uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT n.id INTO taken
          FROM new_rows AS n JOIN public.people AS p ON p.id = n.id
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING
                ERRCODE = 'unique_violation',
                CONSTRAINT = 'people_id_kept',
                MESSAGE = pg_catalog.format('user id %s belongs to a removed user''s history', taken),
                DETAIL = 'The history of a removed account keeps its id, so no new account may take it.',
                HINT = 'Insert the user without an id (the database generates one).';
        END IF;
        INSERT INTO public.people (id, organization_id, email, name, created_at)
        SELECT n.id, n.organization_id, n.email, n.name, n.created_at FROM new_rows AS n;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE public.people AS p
           SET email = n.email, name = n.name, organization_id = n.organization_id
          FROM new_rows AS n
         WHERE p.id = n.id
           AND (p.email, p.name, p.organization_id) IS DISTINCT FROM
               (n.email, n.name, n.organization_id);
    ELSE
        UPDATE public.people AS p
           SET removed_at = pg_catalog.now()
          FROM old_rows AS o
         WHERE p.id = o.id;
    END IF;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

CREATE TRIGGER users_record_people_insert
    AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_record_people();

CREATE TRIGGER users_record_people_update
    AFTER UPDATE ON users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_record_people();

CREATE TRIGGER users_record_people_delete
    AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_record_people();

-- ---------------------------------------------------------------------------
-- Who did something: a person, not an account. The same constraint names, now referring to
-- people; a person goes only with their organization (then SET NULL, as before, on the rows
-- that outlive it: audit rows), so removing an account clears nothing. Every existing value
-- names a user, and every user is in people (above).
--
-- Locks, on purpose in one transaction (the keys change together or not at all): each
-- validation reads its table once while writes to it wait, a few seconds at a million rules.
-- ---------------------------------------------------------------------------
-- squawk-ignore ban-drop-constraint
ALTER TABLE projects DROP CONSTRAINT projects_created_by_fkey;
ALTER TABLE projects
    -- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
    ADD CONSTRAINT projects_created_by_fkey
    FOREIGN KEY (organization_id, created_by) REFERENCES people (organization_id, id)
    ON DELETE SET NULL (created_by);

-- squawk-ignore ban-drop-constraint
ALTER TABLE business_rules DROP CONSTRAINT business_rules_reviewed_by_fkey;
ALTER TABLE business_rules
    -- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
    ADD CONSTRAINT business_rules_reviewed_by_fkey
    FOREIGN KEY (organization_id, reviewed_by) REFERENCES people (organization_id, id)
    ON DELETE SET NULL (reviewed_by);

-- squawk-ignore ban-drop-constraint
ALTER TABLE rule_versions DROP CONSTRAINT rule_versions_changed_by_fkey;
ALTER TABLE rule_versions
    -- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
    ADD CONSTRAINT rule_versions_changed_by_fkey
    FOREIGN KEY (organization_id, changed_by) REFERENCES people (organization_id, id)
    ON DELETE SET NULL (changed_by);

-- squawk-ignore ban-drop-constraint
ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_user_id_fkey;
ALTER TABLE audit_logs
    -- squawk-ignore adding-foreign-key-constraint, constraint-missing-not-valid
    ADD CONSTRAINT audit_logs_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES people (id)
    ON DELETE SET NULL;

-- ---------------------------------------------------------------------------
-- An organization keeps an active admin. AFTER UPDATE and AFTER DELETE, per statement: for each
-- organization that had an active admin among the statement's old rows, in id order, lock the
-- organization row FOR NO KEY UPDATE, then look for an active admin in a new statement (READ
-- COMMITTED: a new snapshot after the lock), so two transactions demoting the last two admins
-- are serialized and the second is refused. An organization that is gone (its own deletion
-- cascading to its users) is not checked. SECURITY DEFINER: it looks at the whole organization
-- and locks a row the app role may only read.
-- ---------------------------------------------------------------------------
CREATE FUNCTION users_keep_an_admin() RETURNS trigger
    LANGUAGE plpgsql
    VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    org record;
BEGIN
    FOR org IN
        SELECT o.id, o.slug,
               (SELECT pg_catalog.min(r.email::text) FROM old_rows AS r
                 WHERE r.organization_id = o.id AND r.role = 'admin' AND r.disabled_at IS NULL)
                   AS email
          FROM public.organizations AS o
         WHERE o.id IN (SELECT r.organization_id FROM old_rows AS r
                         WHERE r.role = 'admin' AND r.disabled_at IS NULL)
         ORDER BY o.id
           FOR NO KEY UPDATE OF o
    LOOP
        IF NOT EXISTS (SELECT 1 FROM public.users AS u
                        WHERE u.organization_id = org.id AND u.role = 'admin'
                          AND u.disabled_at IS NULL) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'check_violation',
                CONSTRAINT = 'organizations_keep_an_admin',
                MESSAGE = pg_catalog.format('%s is the last active admin of %s: it cannot be disabled, removed or demoted',
                                            org.email, org.slug),
                HINT = pg_catalog.format('Make another user of %s admin first: migrationpilot users set-role EMAIL admin',
                                         org.slug);
        END IF;
    END LOOP;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

COMMENT ON FUNCTION users_keep_an_admin() IS
    'Statement trigger: refuses to leave an organization without an active admin (disable, remove, demote).';

CREATE TRIGGER users_keep_an_admin_update
    AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_keep_an_admin();

CREATE TRIGGER users_keep_an_admin_delete
    AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION users_keep_an_admin();
