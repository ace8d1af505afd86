-- migrationpilot: no-transaction
-- V0018: the sha256 CHECKs say the same thing at a twentieth of the cost (issue 25).
--
-- Each of source_files.sha256, business_rules.source_hash and generated_files.sha256 must be
-- 64 lower-case hex digits. The regular expression '^[0-9a-f]{64}$' says so and costs the
-- server about 10 microseconds a value (a bounded repetition is the regex engine's slow
-- path): a second of a 100,000-rule import's one backend CPU. A length and a search for any
-- other character say exactly the same (any character but the 16 is found; 64 bytes of those
-- are 64 characters) in about 0.5 microseconds. Measured with psql over 100,000 hashes on the
-- embedded PostgreSQL 18: 1.0 to 1.1 s against 0.06 s.
--
-- Outside a transaction, so that no table stays locked while it is checked: each ALTER swaps
-- its constraint in one statement (brief ACCESS EXCLUSIVE, no scan: NOT VALID), and VALIDATE
-- then reads the rows under a lock that lets writes go on. Running the file again only does
-- the same again. The names stay: errors and the Drizzle contract name them.
-- squawk-ignore-file ban-drop-constraint, constraint-missing-not-valid

ALTER TABLE source_files
    DROP CONSTRAINT source_files_sha256_format,
    ADD CONSTRAINT source_files_sha256_format
        CHECK (octet_length(sha256) = 64 AND sha256 !~ '[^0-9a-f]') NOT VALID;
ALTER TABLE source_files VALIDATE CONSTRAINT source_files_sha256_format;

ALTER TABLE business_rules
    DROP CONSTRAINT business_rules_source_hash_format,
    ADD CONSTRAINT business_rules_source_hash_format
        CHECK (octet_length(source_hash) = 64 AND source_hash !~ '[^0-9a-f]') NOT VALID;
ALTER TABLE business_rules VALIDATE CONSTRAINT business_rules_source_hash_format;

ALTER TABLE generated_files
    DROP CONSTRAINT generated_files_sha256_format,
    ADD CONSTRAINT generated_files_sha256_format
        CHECK (octet_length(sha256) = 64 AND sha256 !~ '[^0-9a-f]') NOT VALID;
ALTER TABLE generated_files VALIDATE CONSTRAINT generated_files_sha256_format;
