-- The benchmark data set, set-based: one INSERT ... SELECT generate_series per table.
--
--   psql -v orgs=100 -v projects=1000 -v files=100000 -v rules=1000000 -v audit=1000000 \
--        -f bench/generate.sql postgresql://.../migrationpilot
--
-- Run by bench/run.py (`make bench SCALE=...`) against a freshly migrated, empty database.
-- Deterministic (setseed), and shaped like real use rather than uniform:
--   * sizes are skewed: organizations own projects, and projects own files and rules, with
--     a power law (a few big legacy estates, many small ones);
--   * languages: COBOL 45 %, Java 20 %, Fortran 15 %, VB6 10 %, VBA 10 % of projects; a COBOL
--     project's files are programs, copybooks and JCL;
--   * confidence leans high (analyzers are mostly sure): 0.3..1, 38 % at or above 0.9;
--   * review status: 55 % pending, 30 % approved, 10 % needs clarification, 5 % rejected;
--   * audit: reviews dominate, then imports and edits, spread over 90 days.
-- Every rule is written through the versioning triggers, so rule_versions holds version 1 of
-- each, as it would after real imports.
-- Keys are uuids the database generates: the n-th tenant, organization and project is found by
-- the number in its slug or name (bench-3, bench-org-7, Bench project 12), not by its id.
\set ON_ERROR_STOP on
BEGIN;
-- The versioning trigger's transition table holds every new rule: in memory, not on disk.
SET LOCAL work_mem = '256MB';
SELECT setseed(0.42) AS seed \gset

INSERT INTO tenants (name, slug, subscription, max_projects, max_lines_of_code)
SELECT 'Bench tenant ' || t, 'bench-' || t, (ARRAY['free', 'pro', 'enterprise'])[1 + t % 3],
       1000000, 2147483647  -- no limit: max_lines_of_code is an integer
FROM generate_series(1, greatest(:orgs / 4, 1)) AS t;

-- Organization o belongs to tenant 1 + (o - 1) % tenants.
INSERT INTO organizations (tenant_id, name, slug)
SELECT t.id, 'Bench org ' || o, 'bench-org-' || o
FROM generate_series(1, :orgs) AS o
JOIN tenants t ON t.slug = 'bench-' || (1 + (o - 1) % greatest(:orgs / 4, 1));

-- Organizations numbered 0..n-1 (bench-org-1 is 0) for picking one by a skewed random draw.
CREATE TEMPORARY TABLE numbered_organizations ON COMMIT DROP AS
SELECT substr(slug, length('bench-org-') + 1)::int - 1 AS k, id, tenant_id
FROM organizations;
CREATE UNIQUE INDEX ON numbered_organizations (k);

-- Five people per organization; the first of each is its reviewer (reviewer@org-N.bench).
INSERT INTO users (email, name, organization_id, role)
SELECT CASE u WHEN 1 THEN 'reviewer' ELSE 'user' || u END || '@org-' || o.n || '.bench',
       'Bench user ' || u, o.id,
       (ARRAY['reviewer', 'admin', 'architect', 'developer', 'viewer'])[u]::user_role
FROM (SELECT id, k + 1 AS n FROM numbered_organizations) AS o,
     generate_series(1, 5) AS u;

-- Project p belongs to organization floor(orgs * x^2): low-numbered organizations are big.
INSERT INTO projects (name, organization_id, source_language, target_language, created_by)
SELECT 'Bench project ' || r.p, o.id, s.language, s.target, NULL
FROM generate_series(1, :projects) AS g(p)
-- Referring to g.p makes the sub-select run per row (else it runs once: one random draw).
CROSS JOIN LATERAL (SELECT g.p AS p, random() AS x, random() AS y) AS r
JOIN numbered_organizations AS o ON o.k = floor(:orgs * r.x * r.x)::int
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.y < 0.45 THEN 'cobol' WHEN r.y < 0.65 THEN 'java-legacy'
                WHEN r.y < 0.80 THEN 'fortran' WHEN r.y < 0.90 THEN 'vb6'
                ELSE 'vba' END::source_language AS language,
           (ARRAY['java', 'python', 'typescript', 'go', 'csharp'])[1 + r.p % 5]::target_language
             AS target
) AS s;

-- Each project's team (V0015): everyone of its organization but the admin, who acts on every
-- project anyway, in their organization role: the permissions an upgraded database keeps.
INSERT INTO project_members (organization_id, project_id, user_id, role)
SELECT p.organization_id, p.id, u.id, u.role
FROM projects AS p
JOIN users AS u ON u.organization_id = p.organization_id
WHERE u.role <> 'admin';

-- Projects numbered 0..n-1 (Bench project 1 is 0) for picking one by a skewed random draw.
CREATE TEMPORARY TABLE numbered_projects ON COMMIT DROP AS
SELECT substr(name, length('Bench project ') + 1)::int - 1 AS k, id, organization_id,
       source_language
FROM projects;
CREATE UNIQUE INDEX ON numbered_projects (k);

-- Walk most projects some way along the workflow (new projects must start as draft), by
-- their number p = k + 1.
UPDATE projects SET status = 'analyzing'
FROM numbered_projects n WHERE n.id = projects.id AND (n.k + 1) % 10 <> 0;
UPDATE projects SET status = 'analysis_complete'
FROM numbered_projects n WHERE n.id = projects.id AND (n.k + 1) % 10 NOT IN (0, 1);
UPDATE projects SET status = 'designing'
FROM numbered_projects n WHERE n.id = projects.id AND (n.k + 1) % 10 NOT IN (0, 1, 2, 3);
UPDATE projects SET status = 'design_complete'
FROM numbered_projects n WHERE n.id = projects.id AND (n.k + 1) % 10 IN (7, 8, 9);

-- Files: the first of each project is guaranteed (every project has sources), the rest go to
-- projects by x^1.5. Content is a program of 20..420 lines (compressible, like real COBOL).
INSERT INTO source_files (organization_id, project_id, path, content, language, size_bytes,
                          sha256, line_count, code_lines, comment_lines, blank_lines)
SELECT p.organization_id, p.id, f.path, f.content, f.kind, octet_length(f.content),
       encode(sha256(convert_to(f.content, 'UTF8')), 'hex'), f.lines,
       f.lines - f.lines / 5 - f.lines / 10, f.lines / 5, f.lines / 10
FROM generate_series(0, :files - 1) AS i
CROSS JOIN LATERAL (SELECT i AS i, random() AS x, random() AS y, random() AS z) AS r
JOIN numbered_projects p
  ON p.k = CASE WHEN r.i < :projects THEN r.i
                ELSE floor(:projects * power(r.x, 1.5))::int END
CROSS JOIN LATERAL (
    SELECT CASE p.source_language
             WHEN 'cobol' THEN CASE WHEN r.y < 0.80 THEN 'cobol' WHEN r.y < 0.95
                                    THEN 'cobol-copybook' ELSE 'jcl' END
             WHEN 'java-legacy' THEN 'java'
             ELSE p.source_language::text END::source_file_kind AS kind,
           20 + floor(r.z * r.z * 400)::int AS lines
) AS k
CROSS JOIN LATERAL (
    SELECT 'src/' || k.kind || '/PROG' || lpad(r.i::text, 7, '0') || '.src' AS path,
           k.kind,
           k.lines,
           '      * PROGRAM ' || r.i || E'\n'
             || repeat(E'           COMPUTE WS-INTEREST = WS-BALANCE * WS-RATE / 12.\n',
                       k.lines - 1) AS content
) AS f;

-- A project's files numbered in the order they were made: by i, the end of their path.
CREATE TEMPORARY TABLE numbered_files ON COMMIT DROP AS
SELECT project_id, row_number() OVER (PARTITION BY project_id ORDER BY right(path, 15)) - 1 AS k,
       path, line_count
FROM source_files;
CREATE UNIQUE INDEX ON numbered_files (project_id, k);
CREATE TEMPORARY TABLE project_files ON COMMIT DROP AS
SELECT project_id, count(*) AS files FROM source_files GROUP BY 1;

-- One reviewer per organization (reviewer@org-N.bench).
CREATE TEMPORARY TABLE reviewers ON COMMIT DROP AS
SELECT organization_id, id FROM users WHERE role = 'reviewer';
CREATE UNIQUE INDEX ON reviewers (organization_id);

-- Rules: project by x^1.5 (the big estates have most rules), a file of that project, a line
-- range inside it.
INSERT INTO business_rules (organization_id, project_id, name, description, category,
                            source_file, source_start_line, source_end_line, source_code,
                            inputs, outputs, logic, confidence, review_status, reviewed_by,
                            reviewed_at, extracted_at)
SELECT p.organization_id, p.id, 'RULE-' || r.i || ' interest on ' || f.path,
       'Monthly interest on the outstanding balance',
       (ARRAY['calculation', 'validation', 'decision', 'transformation', 'workflow',
              'constraint'])[1 + floor(6 * power(r.c, 1.6))::int]::rule_category,
       f.path, l.first, l.first + l.span,
       'COMPUTE WS-INTEREST = WS-BALANCE * WS-RATE / 12.', '["WS-BALANCE", "WS-RATE"]',
       '["WS-INTEREST"]', 'interest = balance * rate / 12',
       round((1 - r.q * r.q * 0.7)::numeric, 3), s.status,
       CASE WHEN s.status <> 'pending' THEN v.id END,
       CASE WHEN s.status <> 'pending' THEN now() - r.a * interval '30 days' END,
       now() - interval '30 days' - r.a * interval '150 days'
FROM generate_series(0, :rules - 1) AS i
CROSS JOIN LATERAL (SELECT i AS i, random() AS x, random() AS y, random() AS z, random() AS q,
                           random() AS c, random() AS a, random() AS s) AS r
JOIN numbered_projects p ON p.k = floor(:projects * power(r.x, 1.5))::int
JOIN project_files n ON n.project_id = p.id
JOIN numbered_files f ON f.project_id = p.id AND f.k = floor(r.y * n.files)::int
JOIN reviewers v ON v.organization_id = p.organization_id
CROSS JOIN LATERAL (SELECT 1 + floor(r.z * (f.line_count - 10))::int AS first,
                           floor(r.a * 9)::int AS span) AS l
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.s < 0.55 THEN 'pending' WHEN r.s < 0.85 THEN 'approved'
                WHEN r.s < 0.95 THEN 'needs_clarification' ELSE 'rejected' END::review_status
             AS status
) AS s;

-- Audit: organization by x^2, as the projects; reviews are most of it. (The statements above
-- are audited by the database too, a few rows each: the history below is the bulk.) The resource is one
-- of 100,000 ids (a uuid made from its number, so the data set stays deterministic).
INSERT INTO audit_logs (tenant_id, organization_id, user_id, actor_email, db_role, action,
                        resource_type, resource_id, metadata, ip_address, created_at)
SELECT o.tenant_id, o.id, v.id, 'reviewer@bench', 'migrationpilot', a.action, a.kind,
       md5((1 + floor(r.y * 100000))::text)::uuid, jsonb_build_object('comment', 'bench'),
       NULL, now() - r.z * interval '90 days'
FROM generate_series(0, :audit - 1) AS i
CROSS JOIN LATERAL (SELECT i AS i, random() AS x, random() AS y, random() AS z) AS r
JOIN numbered_organizations AS o ON o.k = floor(:orgs * r.x * r.x)::int
JOIN reviewers v ON v.organization_id = o.id
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.y < 0.55 THEN 'rule.approve' WHEN r.y < 0.65 THEN 'rule.reject'
                WHEN r.y < 0.75 THEN 'rule.clarify' WHEN r.y < 0.85 THEN 'rule.update'
                WHEN r.y < 0.93 THEN 'rule.create' ELSE 'source_file.create' END AS action,
           CASE WHEN r.y < 0.93 THEN 'rule' ELSE 'source_file' END AS kind
) AS a;

COMMIT;
