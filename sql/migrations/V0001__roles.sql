-- V0001: the application role.
--
-- The schema is the baseline of the first release: one file per concern, read in order
-- (roles, enums, tenancy and users, projects and files, rules and versions, generated code
-- and tests, audit, routing, row level security and user roles, indexes). It needs no
-- extension, so it runs on any managed PostgreSQL 15+ (RDS, Cloud SQL, Azure, ...):
-- gen_random_uuid() and sha256() are built into PostgreSQL 13 and later.
--
-- Roles: the application connects as (or SET ROLEs to) `migrationpilot_app`.
-- It is a plain role that owns nothing and is subject to row level security
-- (V0009). The migration owner keeps owning every object; because RLS is
-- ENABLEd but not FORCEd, the owner is the unrestricted operator path.
--
-- Roles are cluster-wide while migrations are per database, and several
-- databases in one cluster may run these migrations at the same moment.
-- So creation must be idempotent AND race-safe:
--   * the pg_roles check skips the common "already there" case quietly;
--   * two sessions can both pass that check; the loser then fails inside
--     CREATE ROLE with duplicate_object (normal case) or unique_violation
--     (the race hits the pg_authid unique index first). Both are caught in a
--     sub-block so the surrounding migration transaction stays usable.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'migrationpilot_app') THEN
        BEGIN
            CREATE ROLE migrationpilot_app
                NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                RAISE NOTICE 'role migrationpilot_app was created concurrently by another session; reusing it';
        END;
    END IF;
END
$$;

-- A pre-existing role with SUPERUSER or BYPASSRLS would silently switch off
-- tenant isolation for the whole application. Refuse to continue rather than
-- run an application that looks isolated but is not.
DO $$
BEGIN
    IF EXISTS (SELECT 1
                 FROM pg_catalog.pg_roles
                WHERE rolname = 'migrationpilot_app'
                  AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'role migrationpilot_app exists with SUPERUSER or BYPASSRLS; row level security would not apply'
            USING HINT = 'ALTER ROLE migrationpilot_app NOSUPERUSER NOBYPASSRLS; then re-run the migrations.';
    END IF;
END
$$;

-- Let the migration owner SET ROLE migrationpilot_app.
-- A superuser can always SET ROLE, so nothing to do for one. On managed
-- PostgreSQL the owner is usually a non-superuser with CREATEROLE; it needs
-- an explicit membership. Idempotent: skip when the membership (PG16+: the
-- SET option of it) already exists. PG15 has no 'SET' privilege type for
-- pg_has_role, so fall back to 'MEMBER' there.
DO $$
DECLARE
    needed text := CASE
                       WHEN pg_catalog.current_setting('server_version_num')::int >= 160000 THEN 'SET'
                       ELSE 'MEMBER'
                   END;
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RETURN;
    END IF;
    IF pg_catalog.pg_has_role(current_user, 'migrationpilot_app', needed) THEN
        RETURN;
    END IF;
    BEGIN
        GRANT migrationpilot_app TO CURRENT_USER;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN
            NULL;  -- granted concurrently by another session: fine
        WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'cannot grant migrationpilot_app to %', current_user
                USING HINT = 'The role was created by another user (PG16+ requires ADMIN OPTION on it). '
                          || 'Run as an administrator: GRANT migrationpilot_app TO ' || quote_ident(current_user) || ';';
    END;
END
$$;
