-- V0007: audit log.
--
-- Audit rows must OUTLIVE their subjects: the record that user X deleted
-- project Y is most needed after X and Y are gone. Therefore audit_logs has
-- NO foreign keys at all, not even to organizations or users:
--   * organization_id / user_id / resource_id are plain values;
--   * actor_email is copied at write time so the actor stays identifiable
--     after the user row is deleted;
--   * rows are removed only by the retention purge
--     (tenants.data_retention_days), run by the owner.
-- The application role may only SELECT and INSERT (V0009): append-only.
--
-- Every row names its tenant (retention is per tenant: data_retention_days)
-- and, for everything that happens inside an organization, the organization
-- (the RLS isolation key). Tenant-level administration (creating a tenant,
-- changing its limits) happens above any organization: those rows have no
-- organization_id, so no application user ever sees them; operators do.

CREATE TABLE audit_logs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint      NOT NULL,
    -- Not a FK: the RLS isolation key; NULL only for tenant-level actions.
    organization_id  bigint,
    user_id          bigint,
    actor_email      text,
    -- The database login that made the change (session_user survives SET ROLE):
    -- operator-mode changes have no user_id but are still attributable.
    db_role          text        NOT NULL DEFAULT session_user,
    -- '<resource>.<verb>', e.g. 'rule.approve', 'project.delete'.
    action           text        NOT NULL,
    resource_type    text,
    -- text, not bigint: leaves room for non-numeric identifiers (paths, slugs).
    resource_id      text,
    metadata         jsonb       NOT NULL DEFAULT '{}',
    ip_address       inet                 DEFAULT inet_client_addr(),
    created_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT audit_logs_action_format CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    CONSTRAINT audit_logs_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- Retention purge: DELETE ... WHERE created_at < now() - interval.
CREATE INDEX audit_logs_created_at_idx ON audit_logs (created_at DESC);
-- Retention purge per tenant.
CREATE INDEX audit_logs_tenant_id_created_at_idx ON audit_logs (tenant_id, created_at);
-- The usual read: an organization's recent activity (also the RLS filter).
CREATE INDEX audit_logs_organization_id_created_at_idx ON audit_logs (organization_id, created_at DESC);
-- "Who approved/deleted ...": filter by action.
CREATE INDEX audit_logs_action_idx ON audit_logs (action);
