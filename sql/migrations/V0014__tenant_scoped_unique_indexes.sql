-- migrationpilot: no-transaction
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction
--
-- V0014: unique indexes that lead with organization_id, built without blocking writes;
-- V0015 turns them into the constraints and drops the old ones.
--
-- Why: the unique constraints of V0004-V0008 on (project_id, path), (rule_id, name), ...
-- were an oracle across organizations. A user of organization A could INSERT a row with
-- organization_id = A (row level security accepts it) and the project_id of organization
-- B's project; PostgreSQL checks uniqueness when it inserts the index entry, before the
-- composite foreign key (an AFTER trigger at the end of the statement) refuses the row. So
-- "duplicate key" answered "B's project 17 has a file src/LOANCALC.cbl" where a foreign key
-- error was due. With organization_id leading, the key (A, 17, path) can only collide with
-- a row of A itself: the foreign key makes (A, B's project) impossible, so A gets the same
-- foreign-key error whether or not B's row exists. Uniqueness within a project is unchanged,
-- since every row of a project carries the project's organization.
--
-- Plain (project_id, path) indexes keep the file lookups of operator sessions (no row level
-- security, so no organization_id predicate) as fast as the old unique indexes made them.
-- IF NOT EXISTS: a no-transaction file that fails midway is simply run again.

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS source_files_organization_id_project_id_path_key
    ON source_files (organization_id, project_id, path);
CREATE INDEX CONCURRENTLY IF NOT EXISTS source_files_project_id_path_idx
    ON source_files (project_id, path);

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS generated_files_organization_id_project_id_path_key
    ON generated_files (organization_id, project_id, path);
CREATE INDEX CONCURRENTLY IF NOT EXISTS generated_files_project_id_path_idx
    ON generated_files (project_id, path);

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS business_rules_organization_identity_key
    ON business_rules (organization_id, project_id, source_file, source_start_line,
                       source_end_line, name) NULLS NOT DISTINCT;

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS test_cases_organization_id_rule_id_name_key
    ON test_cases (organization_id, rule_id, name);

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS routing_rules_organization_id_project_id_name_key
    ON routing_rules (organization_id, project_id, name);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS
    routing_rules_organization_id_project_id_path_pattern_key
    ON routing_rules (organization_id, project_id, path_pattern);
