-- V0007: the audit log.
--
-- Audit rows must OUTLIVE their subjects: the record that user X deleted project Y is most
-- needed after X and Y are gone. So:
--   * organization_id and user_id are the design's foreign keys, ON DELETE SET NULL: the
--     row stays when its organization or user goes, and only forgets the link;
--   * actor_email is kept in the row (filled from user_id when an insert omits it), so the
--     actor stays readable after the user row is deleted;
--   * tenant_id (ours, no foreign key) names the tenant whose retention applies
--     (tenants.data_retention_days); rows are removed only by the retention purge, run
--     by the owner;
--   * resource_id is a plain uuid: the subject may be gone.
-- The application role may only SELECT and INSERT (V0009): append-only, and only as
-- itself (the actor columns cannot be forged).
--
-- Tenant-level administration (creating a tenant, changing its limits) happens above any
-- organization: those rows have no organization_id, so no application user ever sees
-- them; operators do.

CREATE TABLE audit_logs (
    id               uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid         REFERENCES organizations (id) ON DELETE SET NULL,
    user_id          uuid         REFERENCES users (id) ON DELETE SET NULL,
    -- '<resource>.<verb>', e.g. 'rule.approve', 'project.delete'.
    action           varchar(100) NOT NULL,
    resource_type    varchar(100) NOT NULL,
    resource_id      uuid,
    metadata         jsonb        NOT NULL DEFAULT '{}',
    -- The client's address as the server saw it (NULL over a Unix socket).
    ip_address       varchar(45)           DEFAULT inet_client_addr()::text,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    -- Ours: the tenant (filled from the organization, else the user), the actor's
    -- email, and the database login that made the change (session_user survives
    -- SET ROLE: operator-mode changes have no user_id but are still attributable).
    tenant_id        uuid         NOT NULL,
    actor_email      varchar(255),
    db_role          text         NOT NULL DEFAULT session_user,

    CONSTRAINT audit_logs_action_not_blank CHECK (btrim(action) <> ''),
    CONSTRAINT audit_logs_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- FK indexes, partial (SET NULL looks up only non-NULL values; tenant-level and
-- operator rows have neither). The user one also finds "what did X do".
CREATE INDEX audit_logs_user_id_idx ON audit_logs (user_id) WHERE user_id IS NOT NULL;

-- The tenant from the organization, else from the user, else the only tenant;
-- the actor's email from the user. Definer rights: the organization and user
-- rows are read past row level security (the policy of V0009 still decides
-- whether the finished row may be written).
CREATE FUNCTION audit_logs_fill() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
BEGIN
    IF NEW.tenant_id IS NULL THEN
        NEW.tenant_id := coalesce(
            (SELECT o.tenant_id FROM public.organizations AS o WHERE o.id = NEW.organization_id),
            (SELECT o.tenant_id FROM public.users AS u
               JOIN public.organizations AS o ON o.id = u.organization_id
              WHERE u.id = NEW.user_id),
            public.only_candidate('audit_logs', 'tenant_id',
                                  ARRAY(SELECT t.id FROM public.tenants AS t LIMIT 2)));
    END IF;
    IF NEW.actor_email IS NULL AND NEW.user_id IS NOT NULL THEN
        NEW.actor_email := (SELECT u.email FROM public.users AS u WHERE u.id = NEW.user_id);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_logs_fill
    BEFORE INSERT ON audit_logs
    FOR EACH ROW
    WHEN (NEW.tenant_id IS NULL OR (NEW.actor_email IS NULL AND NEW.user_id IS NOT NULL))
    EXECUTE FUNCTION audit_logs_fill();
