-- V0012: the grammar of routing rules, enforced by the database as well.
--
-- The CLI validates names, patterns and targets before writing (docs/routing.md);
-- these CHECKs are the backstop for every other client. They matter because the
-- exports (nginx, Envoy, Istio) embed patterns, names and targets verbatim, and
-- `routing resolve` compiles every pattern: a '"', '$' or '{' sneaked in through
-- psql would break a proxy configuration.
--
-- * name: 1-63 lower-case letters, digits, '.', '_', '-', starting with a letter
--   or digit (it is also the Unleash group id and the route name in the exports).
-- * target_service: a lower-case DNS name (RFC 1123), as Kubernetes services.
-- * path_pattern: '/' or '/'-separated segments, each '*', '**' or literal RFC
--   3986 path characters minus '$' and '*'; no '.' or '..' segments and no
--   '**/**'; at most 1000 characters.
--
-- Validated right away instead of NOT VALID + VALIDATE (which squawk wants in
-- separate transactions): routing_rules holds a handful of rows per project, so
-- the scan under the ACCESS EXCLUSIVE lock is over in moments. A row that breaks
-- a rule stops the migration naming the constraint; fix the row and migrate again.
-- The names end in _syntax on purpose: PostgreSQL checks constraints in name
-- order, so the older, more telling ones (..._not_blank, ..._not_legacy,
-- ..._path_pattern_check) still report first.

-- squawk-ignore constraint-missing-not-valid
ALTER TABLE routing_rules ADD CONSTRAINT routing_rules_name_syntax
    CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$');

-- squawk-ignore constraint-missing-not-valid
ALTER TABLE routing_rules ADD CONSTRAINT routing_rules_target_service_syntax
    CHECK (char_length(target_service) <= 253
           AND target_service ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$');

-- squawk-ignore constraint-missing-not-valid
ALTER TABLE routing_rules ADD CONSTRAINT routing_rules_path_pattern_syntax
    CHECK (char_length(path_pattern) <= 1000
           AND path_pattern ~ '^(/|(/(\*\*?|([A-Za-z0-9._~!&''()+,;=:@-]|%[0-9A-Fa-f]{2})+))+)$'
           AND path_pattern !~ '/\.\.?(/|$)'
           AND path_pattern !~ '/\*\*/\*\*(/|$)');
