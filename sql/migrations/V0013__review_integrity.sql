-- V0013: review integrity. A review decision holds only for the content it was made on, and an
-- organization may require a second person to approve (four-eyes). Both in the database, so
-- the CLI, psql as the app role, another application and the owner are all held to them.
--
-- Triggers on business_rules, in the order PostgreSQL fires them (same timing and event: by
-- name), with those of V0005 and V0009:
--
--   BEFORE INSERT, row:      _fill_organization, _last_editor_insert (here), _version_insert
--   BEFORE UPDATE, row:      _last_editor_update (here), _on_edit (here), _set_updated_at,
--                            _version
--   AFTER INSERT/UPDATE,     _check_user_role_*, _four_eyes_* (here), _record_versions_*
--   statement:
--
-- Ours come before _version, so that it compares the row as it will be stored: a reopened rule
-- is one change and one version, written with app.change_reason like any other. The four-eyes
-- check comes after the role check (a developer who approves learns that a reviewer is needed,
-- the more basic refusal) and before the versions are written.

-- ---------------------------------------------------------------------------
-- Who last changed a rule's content: the acting user (current_user_id()) of the statement
-- that inserted the rule or last changed its content; NULL when that was the operator, or
-- before this migration. The database's to say, never a client's (the triggers below).
--
-- Not a foreign key to users, unlike reviewed_by: a key would need an index on a table of
-- millions of rows, built under this file's lock, and its ON DELETE SET NULL would write a new
-- version of every rule a deleted user had last edited. A deleted user's id matches no acting
-- user, so for four-eyes it restricts nobody, exactly like NULL. Nullable with no default: the
-- column is added without rewriting the table, and the design's inserts, which do not know it,
-- get it filled.
-- ---------------------------------------------------------------------------
ALTER TABLE business_rules ADD COLUMN last_edited_by uuid;

COMMENT ON COLUMN business_rules.last_edited_by IS
    'Acting user of the last insert or content change (NULL: the operator). Set by the database only (V0013).';

-- INSERT: the acting user. UPDATE: the value stays as it was; business_rules_on_edit, which
-- fires next, sets it anew when the content changed.
CREATE FUNCTION business_rules_keep_last_editor() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.last_edited_by := public.current_user_id();
    ELSE
        NEW.last_edited_by := OLD.last_edited_by;
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION business_rules_keep_last_editor() IS
    'Row trigger: business_rules.last_edited_by is the acting user on INSERT and unchanged by any client on UPDATE.';

-- Evaluated without calling PL/pgSQL. An operator's insert (no acting user) that names no
-- editor is the common bulk case and needs nothing: the column is NULL already. An empty or
-- unset app.current_user_id is exactly when current_user_id() is NULL, and reading the setting
-- costs less than the function's check of its format.
CREATE TRIGGER business_rules_last_editor_insert
    BEFORE INSERT ON business_rules
    FOR EACH ROW
    WHEN (NEW.last_edited_by IS NOT NULL OR current_setting('app.current_user_id', true) <> '')
    EXECUTE FUNCTION business_rules_keep_last_editor();

-- Only a client that sets the column calls the function.
CREATE TRIGGER business_rules_last_editor_update
    BEFORE UPDATE ON business_rules
    FOR EACH ROW
    WHEN (NEW.last_edited_by IS DISTINCT FROM OLD.last_edited_by)
    EXECUTE FUNCTION business_rules_keep_last_editor();

-- ---------------------------------------------------------------------------
-- A change of content: who made it is noted, and an approved or rejected rule goes back to
-- pending with its review cleared, since that review was of content that no longer exists (the
-- previous version keeps it). A statement that sets the review fields itself along with the
-- content is left alone: that reviewer saw the new content (and, when the result is a decision,
-- V0009 asks for a reviewer). needs_clarification and pending rules keep their state.
--
-- The content is what an extractor or an editor says the rule is; review fields, version,
-- source_hash (revalidation's baseline), timestamps and keys are not content.
-- ---------------------------------------------------------------------------
CREATE FUNCTION business_rules_on_edit() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.last_edited_by := public.current_user_id();
    IF OLD.review_status IN ('approved', 'rejected')
       AND (NEW.review_status, NEW.reviewed_by, NEW.reviewed_at, NEW.review_comments)
           IS NOT DISTINCT FROM
           (OLD.review_status, OLD.reviewed_by, OLD.reviewed_at, OLD.review_comments) THEN
        NEW.review_status := 'pending';
        NEW.reviewed_by := NULL;
        NEW.reviewed_at := NULL;
        NEW.review_comments := NULL;
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION business_rules_on_edit() IS
    'Row trigger on a content change: notes last_edited_by, and puts an approved or rejected rule back to pending unless the statement set the review itself.';

-- The WHEN clause is evaluated without calling PL/pgSQL, so a review batch (which changes no
-- content) pays one row comparison per rule and no function call.
CREATE TRIGGER business_rules_on_edit
    BEFORE UPDATE ON business_rules
    FOR EACH ROW
    WHEN ((NEW.name, NEW.description, NEW.category, NEW.source_file, NEW.source_start_line,
           NEW.source_end_line, NEW.source_code, NEW.inputs, NEW.outputs, NEW.logic, NEW.formula,
           NEW.confidence)
          IS DISTINCT FROM
          (OLD.name, OLD.description, OLD.category, OLD.source_file, OLD.source_start_line,
           OLD.source_end_line, OLD.source_code, OLD.inputs, OLD.outputs, OLD.logic, OLD.formula,
           OLD.confidence))
    EXECUTE FUNCTION business_rules_on_edit();

-- ---------------------------------------------------------------------------
-- Four-eyes, per organization: organizations.settings @> '{"four_eyes": true}' (`orgs set
-- SLUG --four-eyes on`). There, the last person who changed a rule's content cannot approve
-- it: a review decision that leaves a rule approved (a row change touching the review fields,
-- as in V0009, or a rule inserted approved) is refused when the acting user is the rule's
-- last_edited_by. Rejecting and asking for clarification stay open to them.
--
-- Only for an acting user, whoever the session's role: the operator (no acting user) is not a
-- second pair of eyes and is not checked. Per statement, over the transition tables the
-- versioning triggers already collect: one query however many rules a batch approves. A refused
-- statement raises 42501 naming one of the rules, and being an error keeps nothing.
--
-- Caller's rights: under row level security the acting user reads their own organization's
-- settings, the only organization their rules can be in.
-- ---------------------------------------------------------------------------
CREATE FUNCTION business_rules_enforce_four_eyes() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    acting  uuid := public.current_user_id();
    refused record;
BEGIN
    IF acting IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT n.id, org.slug INTO refused
          FROM new_rules AS n
          JOIN public.organizations AS org ON org.id = n.organization_id
         WHERE n.review_status = 'approved'
           AND n.last_edited_by = acting
           AND org.settings @> '{"four_eyes": true}'
         ORDER BY n.id
         LIMIT 1;
    ELSE
        SELECT n.id, org.slug INTO refused
          FROM new_rules AS n
          JOIN old_rules AS o ON o.id = n.id
          JOIN public.organizations AS org ON org.id = n.organization_id
         WHERE n.review_status = 'approved'
           AND n.last_edited_by = acting
           AND (n.review_status, n.reviewed_by, n.reviewed_at, n.review_comments)
               IS DISTINCT FROM
               (o.review_status, o.reviewed_by, o.reviewed_at, o.review_comments)
           -- Not a decision: the database forgetting a reviewer whose user is gone (the ON
           -- DELETE SET NULL of business_rules_reviewed_by_fkey), where nothing else changed.
           -- An admin who deletes a user does not approve the rules they last edited.
           AND NOT (n.reviewed_by IS NULL
                    AND pg_catalog.to_jsonb(n) - '{reviewed_by,updated_at,version}'::text[]
                        = pg_catalog.to_jsonb(o) - '{reviewed_by,updated_at,version}'::text[]
                    AND NOT EXISTS (SELECT 1 FROM public.users AS u WHERE u.id = o.reviewed_by))
           AND org.settings @> '{"four_eyes": true}'
         ORDER BY n.id
         LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('four-eyes: you made the last change to rule %s; another reviewer must approve it',
                                        refused.id),
            HINT = pg_catalog.format('Four-eyes is on in %s: whoever last changed a rule''s content cannot approve it.',
                                     refused.slug);
    END IF;
    RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

COMMENT ON FUNCTION business_rules_enforce_four_eyes() IS
    'Statement trigger: in an organization with settings.four_eyes, refuses (42501) an approval by the acting user who last changed the rule''s content.';

CREATE TRIGGER business_rules_four_eyes_insert
    AFTER INSERT ON business_rules
    REFERENCING NEW TABLE AS new_rules
    FOR EACH STATEMENT EXECUTE FUNCTION business_rules_enforce_four_eyes();

CREATE TRIGGER business_rules_four_eyes_update
    AFTER UPDATE ON business_rules
    REFERENCING OLD TABLE AS old_rules NEW TABLE AS new_rules
    FOR EACH STATEMENT EXECUTE FUNCTION business_rules_enforce_four_eyes();

-- ---------------------------------------------------------------------------
-- Privileges. PostgreSQL grants EXECUTE to PUBLIC by default; these are trigger functions,
-- which need no grant (EXECUTE is checked when a trigger is created, never when it fires).
-- ---------------------------------------------------------------------------
REVOKE EXECUTE ON FUNCTION business_rules_keep_last_editor() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION business_rules_on_edit() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION business_rules_enforce_four_eyes() FROM PUBLIC;
