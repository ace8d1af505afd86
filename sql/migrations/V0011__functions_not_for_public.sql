-- V0011: no function of the schema is executable by PUBLIC.
--
-- PostgreSQL grants EXECUTE on every new function to PUBLIC. For a SECURITY DEFINER
-- function that is a door: any role that can connect runs it with the owner's rights
-- (current_organization_id() reads users past row level security). V0009 closed the doors
-- it knew of one by one; this closes them all, and the ones to come:
--   * every function of schema public loses PUBLIC's EXECUTE;
--   * functions the owner creates later start without it (default privileges), so a
--     new migration grants EXECUTE deliberately, as it grants table privileges;
--   * the application role gets back what it calls: the helpers its policies, queries and
--     SECURITY INVOKER triggers run in its name. Trigger functions need no grant: EXECUTE
--     on them is checked when a trigger is created, never when it fires.
-- `db verify` names any SECURITY DEFINER function that PUBLIC may execute again.

ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;

-- Called by the policies and triggers that run as the app role (V0003-V0009), and by the
-- CLI's queries acting as a user.
GRANT EXECUTE ON FUNCTION
    current_user_id(),
    only_candidate(text, text, uuid[]),
    organization_of_project(text, uuid),
    utf8_size(text),
    utf8_sha256(text),
    text_line_count(text),
    routing_slug(text)
    TO migrationpilot_app;
