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

CREATE TABLE audit_logs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NOT NULL although not a FK: it is the RLS isolation key.
    organization_id  bigint      NOT NULL,
    user_id          bigint,
    actor_email      text,
    -- '<resource>.<verb>', e.g. 'rule.approve', 'project.delete'.
    action           text        NOT NULL,
    resource_type    text,
    -- text, not bigint: leaves room for non-numeric identifiers (paths, slugs).
    resource_id      text,
    metadata         jsonb       NOT NULL DEFAULT '{}',
    ip_address       inet,
    created_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT audit_logs_action_format CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    CONSTRAINT audit_logs_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- Retention purge: DELETE ... WHERE created_at < now() - interval.
CREATE INDEX audit_logs_created_at_idx ON audit_logs (created_at DESC);
-- The usual read: an organization's recent activity (also the RLS filter).
CREATE INDEX audit_logs_organization_id_created_at_idx ON audit_logs (organization_id, created_at DESC);
-- "Who approved/deleted ...": filter by action.
CREATE INDEX audit_logs_action_idx ON audit_logs (action);
