-- V0003: tenancy (tenants, organizations, users) and who is acting.
--
-- Model: a tenant is the billing/subscription unit and carries the limits; an
-- organization belongs to one tenant and is the ISOLATION unit: every tenant-owned row
-- carries organization_id and row level security (V0009) filters on it. A user belongs
-- to exactly one organization.
--
-- The design's tables (../shared/contract/schema.ts) are the contract: every key is a
-- uuid the database generates, every design column has the design's name, type, length,
-- default and nullability (or is NOT NULL where the design lets an insert omit it and a
-- default fills it). What we add (tenant_id of organizations, settings, updated_at,
-- CHECKs) never stops a design-valid insert: where our schema needs a value the design
-- does not know, the database fills it (see "Filled by the database" below).

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
    id                     uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    name                   varchar(255) NOT NULL,
    slug                   varchar(100) NOT NULL,
    subscription           varchar(50)  NOT NULL DEFAULT 'free',
    max_projects           integer      NOT NULL DEFAULT 5,
    max_users_per_project  integer      NOT NULL DEFAULT 10,
    max_lines_of_code      integer      NOT NULL DEFAULT 100000,
    data_retention_days    integer      NOT NULL DEFAULT 90,
    created_at             timestamptz  NOT NULL DEFAULT now(),
    -- Ours: plan settings the design does not name, and the last change.
    settings               jsonb        NOT NULL DEFAULT '{}',
    updated_at             timestamptz  NOT NULL DEFAULT now(),

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
    'Billing/subscription unit; holds plan limits, enforced by triggers (V0004).';

CREATE TRIGGER tenants_set_updated_at
    BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------
-- organizations: the isolation unit.
-- ---------------------------------------------------------------------------
CREATE TABLE organizations (
    id          uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    name        varchar(255) NOT NULL,
    slug        varchar(100) NOT NULL,
    settings    jsonb        NOT NULL DEFAULT '{}',
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    -- Ours: the tenant whose plan the organization uses. Deleting a tenant deletes
    -- everything it owns (ON DELETE CASCADE chains down through organizations ->
    -- users/projects -> project children); the audit trail stays (V0007).
    tenant_id   uuid         NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,

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
    id               uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Stored as given: 'Ana@Acme.test' stays so. Unique and looked up without
    -- regard to case (users_email_key, an index on lower(email)).
    email            varchar(255) NOT NULL,
    name             varchar(255) NOT NULL,
    -- NOT NULL, filled when omitted (see below): every user is in an organization.
    organization_id  uuid         NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- The design's varchar(50), as our enum user_role: its values are what the
    -- role checks (V0009) compare, in order.
    role             user_role    NOT NULL DEFAULT 'developer',
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now(),

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

-- One login, one organization: globally unique, without regard to case, so that
-- 'Ana@X.com' and 'ana@x.com' collide and every lookup by email is this index.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------
-- Session identity.
--
-- The application tells the database who is acting with
--     SET LOCAL ROLE migrationpilot_app;
--     SELECT set_config('app.current_user_id', '<users.id>', true);
-- (docs/security.md). Everything else (organization, tenant, role) is derived
-- from the users table, so a client cannot claim an organization it does not
-- belong to by setting a second variable.
-- ---------------------------------------------------------------------------

-- The acting user's id, or NULL when the setting is unset, empty or not a uuid.
-- Must never raise: it is evaluated inside RLS policies and triggers, where an
-- error would break every query of a session that simply has not identified
-- itself yet. CASE guarantees the cast only runs on a matching string.
-- PARALLEL SAFE: current_setting is, and custom settings are copied to
-- parallel workers; otherwise every RLS-filtered query would lose parallelism.
CREATE FUNCTION current_user_id() RETURNS uuid
    LANGUAGE sql
    STABLE
    PARALLEL SAFE
AS $$
    SELECT CASE
               WHEN s.v ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
                   THEN s.v::uuid
           END
      FROM (SELECT pg_catalog.current_setting('app.current_user_id', true) AS v) AS s
$$;

COMMENT ON FUNCTION current_user_id() IS
    'Acting user id from app.current_user_id; NULL when unset, empty or not a uuid. Never raises.';

-- The acting user's organization. SECURITY DEFINER (runs as the migration
-- owner, who is not subject to RLS because RLS is not FORCEd) so that the
-- users table's own policy, which calls this function, does not recurse.
-- Safe as a definer function: no dynamic SQL, no arguments, every object
-- schema-qualified, and a pinned search_path. EXECUTE only for the app role
-- (V0009), not PUBLIC.
CREATE FUNCTION current_organization_id() RETURNS uuid
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
CREATE FUNCTION current_tenant_id() RETURNS uuid
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

-- ---------------------------------------------------------------------------
-- Filled by the database.
--
-- The design's applications insert organizations without a tenant and users
-- without an organization (both columns are ours, or nullable in the design).
-- A BEFORE INSERT trigger fills what the insert left out, and only then: the
-- WHEN clause keeps it off the path of every insert that names the value, so
-- the CLI's bulk writes pay nothing for it. A value that the insert gives is
-- never replaced; the foreign keys check it as always.
--
-- The only candidate when exactly one exists; otherwise a clear error naming
-- the column (SQLSTATE 23502, as for the NOT NULL it stands in for).
-- ---------------------------------------------------------------------------

-- The one element of `candidates` (the candidates, at most two are needed to know),
-- or the error that names `column_name` of `table_name`.
CREATE FUNCTION only_candidate(table_name text, column_name text, candidates uuid[]) RETURNS uuid
    LANGUAGE plpgsql
    IMMUTABLE
AS $$
BEGIN
    IF pg_catalog.cardinality(candidates) = 1 THEN
        RETURN candidates[1];
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'not_null_violation',
        COLUMN = column_name,
        TABLE = table_name,
        MESSAGE = pg_catalog.format('%s.%s is required: there is %s to take it from',
                                    table_name, column_name,
                                    CASE WHEN pg_catalog.cardinality(candidates) = 0 THEN 'no row'
                                         ELSE 'more than one row' END),
        HINT = pg_catalog.format('Name the %s in the INSERT.', column_name);
END
$$;

-- An organization without tenant_id: the only tenant. Definer rights: it
-- counts every tenant (only the operator creates organizations anyway).
CREATE FUNCTION organizations_fill_tenant() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
BEGIN
    NEW.tenant_id := public.only_candidate(
        'organizations', 'tenant_id',
        ARRAY(SELECT t.id FROM public.tenants AS t LIMIT 2));
    RETURN NEW;
END
$$;

CREATE TRIGGER organizations_fill_tenant
    BEFORE INSERT ON organizations
    FOR EACH ROW
    WHEN (NEW.tenant_id IS NULL)
    EXECUTE FUNCTION organizations_fill_tenant();

-- A user without organization_id: the acting user's organization, else the
-- only organization. Caller's rights: under row level security the acting
-- user's organization is the only one they could write anyway.
CREATE FUNCTION users_fill_organization() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.organization_id := coalesce(
        public.current_organization_id(),
        public.only_candidate(
            'users', 'organization_id',
            ARRAY(SELECT o.id FROM public.organizations AS o LIMIT 2)));
    RETURN NEW;
END
$$;

CREATE TRIGGER users_fill_organization
    BEFORE INSERT ON users
    FOR EACH ROW
    WHEN (NEW.organization_id IS NULL)
    EXECUTE FUNCTION users_fill_organization();
