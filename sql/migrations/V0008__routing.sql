-- V0008: traffic routing rules for strangler-fig cut-over.
--
-- A routing rule sends a share of requests matching path_pattern to a
-- migrated service instead of the legacy system. 'legacy' is the reserved
-- name of the implicit default destination, so it cannot be a target.
-- New rules start disabled with 0% traffic: creating a rule must never
-- move production traffic by itself.

CREATE TABLE routing_rules (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id     bigint      NOT NULL,
    project_id          bigint      NOT NULL,
    name                text        NOT NULL,
    path_pattern        text        NOT NULL,
    target_service      text        NOT NULL,
    traffic_percentage  int         NOT NULL DEFAULT 0,
    -- Shadow mode: mirror traffic to the target and compare, but serve the
    -- legacy response.
    shadow_mode         boolean     NOT NULL DEFAULT false,
    enabled             boolean     NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT routing_rules_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT routing_rules_path_pattern_check CHECK (starts_with(path_pattern, '/')),
    CONSTRAINT routing_rules_target_service_not_blank CHECK (btrim(target_service) <> ''),
    -- Case/whitespace-insensitive so 'Legacy ' cannot sneak past the reservation.
    CONSTRAINT routing_rules_target_service_not_legacy CHECK (lower(btrim(target_service)) <> 'legacy'),
    CONSTRAINT routing_rules_traffic_percentage_check CHECK (traffic_percentage BETWEEN 0 AND 100),

    -- Both unique constraints lead with project_id and serve
    -- routing_rules(project_id) lookups; no separate project_id index.
    CONSTRAINT routing_rules_project_id_name_key UNIQUE (project_id, name),
    -- One rule per pattern per project: two rules on the same pattern would
    -- make the effective traffic split ambiguous.
    CONSTRAINT routing_rules_project_id_path_pattern_key UNIQUE (project_id, path_pattern),
    CONSTRAINT routing_rules_project_fkey
        FOREIGN KEY (organization_id, project_id)
        REFERENCES projects (organization_id, id)
        ON DELETE CASCADE
);

-- FK index: the uniques lead with project_id only, not (organization_id, project_id).
CREATE INDEX routing_rules_organization_id_project_id_idx ON routing_rules (organization_id, project_id);

CREATE TRIGGER routing_rules_set_updated_at
    BEFORE UPDATE ON routing_rules
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
