-- V0003: tenancy (tenants, organizations, users) and the session-identity
-- helper functions used by triggers and row level security.
--
-- Model: a tenant is the billing/subscription unit and carries the limits;
-- an organization belongs to one tenant and is the ISOLATION unit: every
-- tenant-owned row carries organization_id and RLS (V0009) filters on it.
-- Users belong to exactly one organization.

-- ---------------------------------------------------------------------------
-- Shared trigger function: keep updated_at honest whatever the client is
-- (CLI, psql, a DBA script). One function for every mutable table, so the
-- behaviour cannot drift between tables. Client-supplied values are
-- overwritten on purpose.
-- ---------------------------------------------------------------------------
CREATE FUNCTION set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION set_updated_at() IS
    'BEFORE UPDATE trigger: sets NEW.updated_at to now() (transaction start time).';

-- ---------------------------------------------------------------------------
-- tenants
-- ---------------------------------------------------------------------------
CREATE TABLE tenants (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                   text   NOT NULL,
    slug                   text   NOT NULL,
    subscription           text   NOT NULL DEFAULT 'free',
    max_projects           int    NOT NULL DEFAULT 5,
    max_users_per_project  int    NOT NULL DEFAULT 10,
    max_lines_of_code      bigint NOT NULL DEFAULT 100000,
    data_retention_days    int    NOT NULL DEFAULT 90,
    settings               jsonb  NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT tenants_slug_key UNIQUE (slug),
    CONSTRAINT tenants_name_not_blank CHECK (btrim(name) <> ''),
    -- Slugs appear in URLs and CLI arguments: lower-case words joined by single hyphens.
    CONSTRAINT tenants_slug_format CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    -- text + CHECK instead of an enum: plan names are commercial and change
    -- more often than the code's vocabularies; a CHECK is easier to alter.
    CONSTRAINT tenants_subscription_check CHECK (subscription IN ('free', 'pro', 'enterprise')),
    CONSTRAINT tenants_max_projects_check CHECK (max_projects >= 0),
    CONSTRAINT tenants_max_users_per_project_check CHECK (max_users_per_project >= 0),
    CONSTRAINT tenants_max_lines_of_code_check CHECK (max_lines_of_code >= 0),
    -- Zero retention would mean "purge audit trail immediately": never valid.
    CONSTRAINT tenants_data_retention_days_check CHECK (data_retention_days > 0),
    CONSTRAINT tenants_settings_is_object CHECK (jsonb_typeof(settings) = 'object')
);

COMMENT ON TABLE tenants IS
    'Billing/subscription unit; holds plan limits. Limits are enforced by triggers added in a later migration.';

CREATE TRIGGER tenants_set_updated_at
    BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------
-- organizations: the isolation unit.
-- ---------------------------------------------------------------------------
CREATE TABLE organizations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Deleting a tenant deletes everything it owns (ON DELETE CASCADE chains
    -- down through organizations -> users/projects -> project children).
    tenant_id   bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text   NOT NULL,
    slug        text   NOT NULL,
    settings    jsonb  NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),

    -- Globally unique (not per tenant): the slug alone identifies an
    -- organization on the command line.
    CONSTRAINT organizations_slug_key UNIQUE (slug),
    CONSTRAINT organizations_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT organizations_slug_format CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    CONSTRAINT organizations_settings_is_object CHECK (jsonb_typeof(settings) = 'object')
);

-- FK index: tenant deletion (cascade) and "organizations of tenant X".
CREATE INDEX organizations_tenant_id_idx ON organizations (tenant_id);

CREATE TRIGGER organizations_set_updated_at
    BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------
-- users
-- ---------------------------------------------------------------------------
CREATE TABLE users (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email            text      NOT NULL,
    name             text      NOT NULL,
    organization_id  bigint    NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role             user_role NOT NULL DEFAULT 'developer',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),

    -- Globally unique: one login identity maps to one organization.
    CONSTRAINT users_email_key UNIQUE (email),
    -- Stored lower-case so the plain UNIQUE constraint is case-insensitive
    -- without citext (no extension) or an expression index; the client
    -- lower-cases before writing and before looking up.
    CONSTRAINT users_email_lowercase CHECK (email = lower(email)),
    -- Deliberately minimal sanity check (something before an '@');
    -- real validation belongs to the client / an invitation flow.
    CONSTRAINT users_email_format CHECK (position('@' IN email) > 1),
    CONSTRAINT users_name_not_blank CHECK (btrim(name) <> ''),
    -- Target of the composite foreign keys (organization_id, <user column>)
    -- from tenant-owned tables: guarantees a project's creator, a rule's
    -- reviewer, etc. belong to the same organization as the row itself.
    -- Its leading column also serves as the index for the organization FK.
    CONSTRAINT users_organization_id_id_key UNIQUE (organization_id, id)
);

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------
-- Session identity.
--
-- The application tells the database who is acting with
--     SELECT set_config('app.current_user_id', '<users.id>', false);
-- (or true for transaction scope). Everything else (organization, tenant)
-- is derived from the users table, so a client cannot claim an organization
-- it does not belong to by setting a second variable.
-- ---------------------------------------------------------------------------

-- The acting user's id, or NULL when the setting is unset, empty or not a
-- plain number. Must never raise: it is evaluated inside RLS policies and
-- triggers, where an error would break every query of a session that simply
-- has not identified itself yet. At most 18 digits, so the cast can never
-- overflow bigint. CASE guarantees the cast only runs on a matching string.
-- PARALLEL SAFE: current_setting is, and custom settings are copied to
-- parallel workers; otherwise every RLS-filtered query would lose parallelism.
CREATE FUNCTION current_user_id() RETURNS bigint
    LANGUAGE sql
    STABLE
    PARALLEL SAFE
AS $$
    SELECT CASE
               WHEN s.v ~ '^[0-9]{1,18}$' THEN s.v::bigint
           END
      FROM (SELECT pg_catalog.current_setting('app.current_user_id', true) AS v) AS s
$$;

COMMENT ON FUNCTION current_user_id() IS
    'Acting user id from app.current_user_id; NULL when unset, empty or malformed. Never raises.';

-- The acting user's organization. SECURITY DEFINER (runs as the migration
-- owner, who is not subject to RLS because RLS is not FORCEd) so that the
-- users table's own policy, which calls this function, does not recurse.
-- Safe as a definer function: no dynamic SQL, no arguments, every object
-- schema-qualified, and a pinned search_path.
CREATE FUNCTION current_organization_id() RETURNS bigint
    LANGUAGE sql
    STABLE
    PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT u.organization_id
      FROM public.users AS u
     WHERE u.id = public.current_user_id()
$$;

COMMENT ON FUNCTION current_organization_id() IS
    'Organization of the acting user (NULL when none). SECURITY DEFINER to avoid RLS recursion on users.';

-- The acting user's tenant, via their organization. Same reasoning as above.
CREATE FUNCTION current_tenant_id() RETURNS bigint
    LANGUAGE sql
    STABLE
    PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT o.tenant_id
      FROM public.users AS u
      JOIN public.organizations AS o ON o.id = u.organization_id
     WHERE u.id = public.current_user_id()
$$;

COMMENT ON FUNCTION current_tenant_id() IS
    'Tenant of the acting user (NULL when none). SECURITY DEFINER to avoid RLS recursion.';
