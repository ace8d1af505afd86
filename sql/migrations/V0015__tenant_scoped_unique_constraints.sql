-- V0015: the unique constraints of project children lead with organization_id (the indexes
-- come from V0014, which says why: a duplicate key must not reveal another organization's
-- rows). ADD CONSTRAINT ... USING INDEX only takes a short lock; the old constraints go.
--
-- rule_versions (rule_id, version) stays: the app role cannot INSERT or UPDATE versions, so it
-- can never provoke that duplicate. users (email) stays global on purpose: one login, one
-- organization (docs/security.md says what that reveals).
--
-- Each dropped constraint is replaced in the same transaction by one that guarantees exactly as
-- much (a project's rows all carry its organization), hence:
-- squawk-ignore-file ban-drop-constraint

ALTER TABLE source_files DROP CONSTRAINT source_files_project_id_path_key;
ALTER TABLE source_files ADD CONSTRAINT source_files_organization_id_project_id_path_key
    UNIQUE USING INDEX source_files_organization_id_project_id_path_key;

ALTER TABLE generated_files DROP CONSTRAINT generated_files_project_id_path_key;
ALTER TABLE generated_files ADD CONSTRAINT generated_files_organization_id_project_id_path_key
    UNIQUE USING INDEX generated_files_organization_id_project_id_path_key;

ALTER TABLE business_rules DROP CONSTRAINT business_rules_identity_key;
ALTER TABLE business_rules ADD CONSTRAINT business_rules_organization_identity_key
    UNIQUE USING INDEX business_rules_organization_identity_key;

ALTER TABLE test_cases DROP CONSTRAINT test_cases_rule_id_name_key;
ALTER TABLE test_cases ADD CONSTRAINT test_cases_organization_id_rule_id_name_key
    UNIQUE USING INDEX test_cases_organization_id_rule_id_name_key;

ALTER TABLE routing_rules DROP CONSTRAINT routing_rules_project_id_name_key;
ALTER TABLE routing_rules ADD CONSTRAINT routing_rules_organization_id_project_id_name_key
    UNIQUE USING INDEX routing_rules_organization_id_project_id_name_key;

ALTER TABLE routing_rules DROP CONSTRAINT routing_rules_project_id_path_pattern_key;
ALTER TABLE routing_rules
    ADD CONSTRAINT routing_rules_organization_id_project_id_path_pattern_key
    UNIQUE USING INDEX routing_rules_organization_id_project_id_path_pattern_key;
