-- V0008: traffic routing rules for the strangler-fig cut-over.
--
-- A routing rule sends a share of the requests matching path_pattern to target_service.
-- Requests no enabled rule takes stay on the legacy system. Several rules may share one
-- pattern with different targets: a split among services (`legacy` 10 and `modern` 90);
-- the enabled percentages of one pattern add up to at most 100 (routing_rules_split_total).
-- New rules start disabled with 0% traffic: creating a rule must never move production
-- traffic by itself.
--
-- name is free text ("Late fees API"), unique per project without regard to case. The
-- exports need an identifier (the Unleash group id that buckets users, the nginx, Envoy
-- and Istio route names): `slug`, derived from the name when the rule is created, unique
-- per project, and kept when the rule is renamed, because a new group id would reshuffle
-- live users between legacy and modern. A name that already is such an identifier is its
-- own slug, so rules named that way keep their buckets.

CREATE TABLE routing_rules (
    id                  uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id          uuid         NOT NULL,
    name                varchar(255) NOT NULL,
    path_pattern        varchar(500) NOT NULL,
    target_service      varchar(50)  NOT NULL,
    traffic_percentage  integer      NOT NULL DEFAULT 0,
    -- Shadow mode: mirror traffic to the target and compare, but serve the
    -- legacy response.
    shadow_mode         boolean      NOT NULL DEFAULT false,
    enabled             boolean      NOT NULL DEFAULT false,
    created_at          timestamptz  NOT NULL DEFAULT now(),
    -- Ours: filled from the project, derived from the name (see above).
    organization_id     uuid         NOT NULL,
    slug                text         NOT NULL,
    updated_at          timestamptz  NOT NULL DEFAULT now(),

    CONSTRAINT routing_rules_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT routing_rules_name_printable CHECK (name !~ '[[:cntrl:]]'),
    -- A lower-case identifier, as the exports and Unleash need it.
    CONSTRAINT routing_rules_slug_syntax CHECK (slug ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    -- Any service name, `legacy` and `modern` included; the exports derive their own
    -- upstream and cluster names from it.
    CONSTRAINT routing_rules_target_service_not_blank CHECK (btrim(target_service) <> ''),
    CONSTRAINT routing_rules_target_service_printable CHECK (target_service !~ '[[:cntrl:]]'),
    CONSTRAINT routing_rules_traffic_percentage_check CHECK (traffic_percentage BETWEEN 0 AND 100),
    -- The grammar of patterns (docs/routing.md): '/' or '/'-separated segments,
    -- each '*', '**' or literal RFC 3986 path characters minus '$' and '*'; no
    -- '.' or '..' segments and no '**/**'. The exports embed patterns verbatim,
    -- and `routing resolve` compiles every one: a '"', '$' or '{' sneaked in
    -- through psql would break a proxy configuration.
    CONSTRAINT routing_rules_path_pattern_check CHECK (starts_with(path_pattern, '/')),
    CONSTRAINT routing_rules_path_pattern_syntax
        CHECK (path_pattern ~ '^(/|(/(\*\*?|([A-Za-z0-9._~!&''()+,;=:@-]|%[0-9A-Fa-f]{2})+))+)$'
               AND path_pattern !~ '/\.\.?(/|$)'
               AND path_pattern !~ '/\*\*/\*\*(/|$)'),

    -- organization_id leads (see source_files); its prefix serves the project FK.
    CONSTRAINT routing_rules_organization_id_project_id_slug_key
        UNIQUE (organization_id, project_id, slug),
    CONSTRAINT routing_rules_project_fkey
        FOREIGN KEY (organization_id, project_id)
        REFERENCES projects (organization_id, id)
        ON DELETE CASCADE
);

-- Names are unique per project without regard to case: 'Late fees API' and
-- 'late fees api' are one rule to a person.
CREATE UNIQUE INDEX routing_rules_organization_id_project_id_name_key
    ON routing_rules (organization_id, project_id, lower(name));

CREATE TRIGGER routing_rules_set_updated_at
    BEFORE UPDATE ON routing_rules
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The identifier a name gives: the name itself when it is one, else its
-- lower-case letters and digits joined by single dashes, at most 63 characters
-- ('Late fees API' -> 'late-fees-api'; 'Ünïcode' -> 'n-code'; no letter or
-- digit at all -> 'rule').
CREATE FUNCTION routing_slug(name text) RETURNS text
    LANGUAGE sql
    IMMUTABLE
    PARALLEL SAFE
AS $$
    SELECT CASE
               WHEN name ~ '^[a-z0-9][a-z0-9._-]{0,62}$' THEN name
               ELSE coalesce(
                   NULLIF(pg_catalog.rtrim(pg_catalog.left(pg_catalog.btrim(
                       pg_catalog.regexp_replace(pg_catalog.lower(name), '[^a-z0-9]+', '-', 'g'),
                       '-'), 63), '-'), ''),
                   'rule')
           END
$$;

-- BEFORE INSERT: the organization from the project (organization_of_project), and a slug
-- from the name when none is given, made unique in the project with -2, -3, ...
-- A slug given by the client is kept as it is (the unique key checks it). Two
-- concurrent inserts deriving the same slug: the second meets the unique key and
-- fails; it is rare (same name shape, same project, same moment) and safe.
CREATE FUNCTION routing_rules_fill() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    base      text;
    candidate text;
    n         integer := 1;
BEGIN
    NEW.organization_id := coalesce(NEW.organization_id,
                                    public.organization_of_project('routing_rules', NEW.project_id));
    IF NEW.slug IS NULL AND NEW.name IS NOT NULL THEN
        base := public.routing_slug(NEW.name);
        candidate := base;
        WHILE EXISTS (SELECT 1 FROM public.routing_rules AS r
                       WHERE r.project_id = NEW.project_id AND r.slug = candidate) LOOP
            n := n + 1;
            candidate := pg_catalog.left(base, 63 - 1 - pg_catalog.length(n::text)) || '-' || n;
        END LOOP;
        NEW.slug := candidate;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER routing_rules_fill
    BEFORE INSERT ON routing_rules
    FOR EACH ROW
    WHEN (NEW.organization_id IS NULL OR NEW.slug IS NULL)
    EXECUTE FUNCTION routing_rules_fill();

-- A rule keeps its slug for life: renaming changes the name only.
CREATE FUNCTION routing_rules_keep_slug() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        CONSTRAINT = 'routing_rules_slug_kept',
        MESSAGE = pg_catalog.format('routing rule %L keeps its slug %s: it is the group id that buckets users',
                                    OLD.name, OLD.slug),
        HINT = 'Rename the rule (name) instead; a new slug would move live users between targets.';
END
$$;

CREATE TRIGGER routing_rules_keep_slug
    BEFORE UPDATE ON routing_rules
    FOR EACH ROW
    WHEN (NEW.slug IS DISTINCT FROM OLD.slug)
    EXECUTE FUNCTION routing_rules_keep_slug();

-- The enabled percentages of one pattern add up to at most 100: a split among
-- several targets can never promise more than all of the traffic. Checked per
-- statement (AFTER, transition tables), for the patterns the statement touched
-- that may have grown. Concurrent writers of one project's routing queue on a
-- transaction-level advisory lock per project, taken in project order; the sum
-- that follows is a new statement with a new snapshot (READ COMMITTED), so it
-- sees what the first writer committed. Under SERIALIZABLE the same race ends in a
-- serialization failure; REPEATABLE READ sums with the transaction's own snapshot
-- and is NOT protected (as for the tenant limits, V0004): write routing rules in
-- READ COMMITTED or SERIALIZABLE.
CREATE FUNCTION routing_rules_check_split() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    over record;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(t.project_id::text, 7))
       FROM (SELECT DISTINCT project_id FROM new_rules WHERE enabled ORDER BY project_id) AS t;
    SELECT r.project_id, r.path_pattern, pg_catalog.sum(r.traffic_percentage) AS total,
           pg_catalog.string_agg(pg_catalog.format('%s %s%%', r.name, r.traffic_percentage),
                                 ', ' ORDER BY r.created_at, r.slug) AS rules
      INTO over
      FROM public.routing_rules AS r
     WHERE r.enabled
       AND (r.project_id, r.path_pattern) IN (SELECT n.project_id, n.path_pattern
                                                FROM new_rules AS n WHERE n.enabled)
     GROUP BY r.project_id, r.path_pattern
    HAVING pg_catalog.sum(r.traffic_percentage) > 100
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'routing_rules_split_total',
            MESSAGE = pg_catalog.format('the enabled rules on %s add up to %s%% (%s); at most 100%%',
                                        over.path_pattern, over.total, over.rules),
            HINT = 'Lower one rule''s traffic before raising another''s, or disable one.';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER routing_rules_check_split_insert
    AFTER INSERT ON routing_rules
    REFERENCING NEW TABLE AS new_rules
    FOR EACH STATEMENT EXECUTE FUNCTION routing_rules_check_split();

CREATE TRIGGER routing_rules_check_split_update
    AFTER UPDATE ON routing_rules
    REFERENCING NEW TABLE AS new_rules
    FOR EACH STATEMENT EXECUTE FUNCTION routing_rules_check_split();
