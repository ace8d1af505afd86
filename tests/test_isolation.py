"""The isolation matrix: every tenant table x every action x every kind of actor, through the
app role with plain SQL, and the same promise through the CLI.

The cases are generated: the tables come from the catalog (a test pins the list, so a new
table cannot escape the matrix unnoticed), the row a case inserts is derived from a row the
seed put there (new values for its unique columns; for rule_versions, where a client may only
complete a version the database wrote, that version's row with the client's change_reason),
and what a case expects follows from the actor and from the privileges the app role holds.
Every case targets organization A's rows:

* ``own``: A's admin. Reads A's rows and no other; writes them where granted; cannot move
  them to another organization (the policy's WITH CHECK).
* ``other``: B's admin (another tenant). Sees none of A's rows; an insert into A is refused by
  the policy; updates, deletes and moves of A's rows affect 0 rows.
* no acting user, or a malformed ``app.current_user_id`` (empty, letters, negative, a number as
  the keys used to be, a uuid that is nobody's, A's admin's uuid with one digit too many):
  sees nothing, writes nothing, and never an error other than the policy's
  (``current_user_id()`` never raises).

A rule_versions row that completes A's version (written by the case's own transaction, as a
client completes the version of its own change) is refused to anyone else either by the policy
or, earlier, by the completion check, which looks for the version in the acting user's
organization only and so says "rule ... has no version 2 written by this transaction to
complete" (both count as refused).

Each case runs in a transaction that is rolled back, on one database seeded once for the
module; "nothing changed" is the owner's digest of every table, taken before and after the
action inside that transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.types.json import Jsonb

from migrationpilot_cli.db.connect import APP_ROLE
from tests.conftest import Server, run_cli, with_database
from tests.snapshots import digest
from tests.test_schema import Org, World, owner_key, seed

Conn = psycopg.Connection[Any]

# Tables the app role can reach only through their link to an organization (read-only).
TENANCY_TABLES = ["organizations", "tenants"]
TENANT_OWNED_TABLES = [
    "audit_logs",
    "business_rules",
    "generated_files",
    "people",
    "project_members",
    "projects",
    "routing_rules",
    "rule_versions",
    "source_files",
    "test_cases",
    "users",
]
MATRIX_TABLES = TENANT_OWNED_TABLES + TENANCY_TABLES
ACTIONS = ["select", "insert", "update", "delete", "move"]
# The value of app.current_user_id per actor; own and other are filled in from the seed, and so
# are the actors spelled from A's admin's uuid (a callable of it).
MALFORMED: dict[str, str | Callable[[UUID], str] | None] = {
    "no-user": None,
    "empty": "",
    "letters": "abc",
    "negative": "-1",
    "integer": "987654321",
    "unknown-id": "6f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
    "too-long": lambda own: f"{own}0",
}
ACTORS = ["own", "other", *MALFORMED]
PRIVILEGE = {"insert": "INSERT", "update": "UPDATE", "delete": "DELETE", "move": "UPDATE"}
RLS_REFUSED = "new row violates row-level security policy"
# rule_versions: a client's row must complete a version the database wrote, looked up in the
# acting user's organization only; anyone else is refused before the policy is asked.
COMPLETION_REFUSED = "rule_versions_written_by_the_database"
SUFFIX = "-isolation"
# A user of A who is on no project's team: a new membership of A's project names them.
MEMBER_TO_BE = "colleague@a.example"


def _cases() -> Iterator[Any]:
    for table in MATRIX_TABLES:
        for action in ACTIONS:
            if action == "move" and table == "tenants":
                continue  # a tenant belongs to nothing it could be moved out of
            for actor in ACTORS:
                yield pytest.param(table, action, actor, id=f"{table}-{action}-{actor}")


# ---------------------------------------------------------------------------------------------
# The seeded database, shared by the module
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(server: Server, template_database: str) -> Iterator[tuple[str, World]]:
    name = server.create_database(template=template_database)
    url = with_database(server.url, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            world = seed(conn)
            conn.execute(
                "INSERT INTO users (email, name, organization_id, role)"
                " VALUES (%s, 'Colleague', %s, 'viewer')",
                (MEMBER_TO_BE, world.a.org),
            )
        yield url, world
    finally:
        server.drop_database(name)


@pytest.fixture(scope="module")
def owner(seeded: tuple[str, World]) -> Iterator[Conn]:
    with psycopg.connect(seeded[0], autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def world(seeded: tuple[str, World]) -> World:
    return seeded[1]


# ---------------------------------------------------------------------------------------------
# Building one case from the catalog
# ---------------------------------------------------------------------------------------------


def _scalar(conn: Conn, query: str | sql.Composable, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _first_row(conn: Conn, table: str, org: Org, *, last: bool = False) -> dict[str, Any]:
    """The seed's first (or last) row of ``org`` in ``table``, as a JSON object (read as the
    owner). Insertion order: the seed's transaction, then the row's place in the heap (the
    module's database is fresh, its seeded rows never updated, and every case rolled back)."""
    column, value = owner_key(table, org)
    query = sql.SQL(
        "SELECT to_jsonb(t) FROM {} AS t WHERE {} = %s"
        " ORDER BY t.created_at {order}, t.ctid {order} LIMIT 1"
    )
    order = sql.SQL("DESC" if last else "ASC")
    query = query.format(sql.Identifier(table), sql.Identifier(column), order=order)
    row = _scalar(conn, query, (value,))
    assert row is not None, f"the seed has no row of {table} for {org}"
    return dict(row)


def _identity_columns(conn: Conn, table: str) -> set[str]:
    """The columns whose value the database generates for a new row: identity columns, and
    keys defaulting to a fresh uuid."""
    query = """
        SELECT a.attname FROM pg_attribute AS a
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) = 'gen_random_uuid()')
    """
    return {name for (name,) in conn.execute(query, (table,))}


def _unique_keys(conn: Conn, table: str) -> list[list[str]]:
    """The columns of every unique index but the primary key, in the index's order; a column
    an expression of the index reads (``lower(email)``) counts as one of them."""
    query = """
        SELECT array(SELECT a.attname
                     FROM pg_attribute AS a
                     LEFT JOIN unnest(i.indkey) WITH ORDINALITY AS k (attnum, position)
                          ON k.attnum = a.attnum
                     WHERE a.attrelid = i.indrelid AND a.attnum > 0
                       AND (k.attnum IS NOT NULL OR a.attnum IN (
                            SELECT d.refobjsubid FROM pg_depend AS d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                              AND d.refclassid = 'pg_class'::regclass
                              AND d.refobjid = i.indrelid))
                     ORDER BY k.position NULLS LAST, a.attnum)
        FROM pg_index AS i
        WHERE i.indrelid = %s::regclass AND i.indisunique AND NOT i.indisprimary
    """
    return [list(columns) for (columns,) in conn.execute(query, (table,))]


def derived_row(conn: Conn, table: str, org: Org) -> dict[str, Any]:
    """A new, valid row for ``org``: a copy of an existing one without its identity columns,
    with fresh values in one column of every unique key that the copy would collide on (a
    key made only of references, a membership's, gets another user of the organization, one
    who is not a member: MEMBER_TO_BE)."""
    identity = _identity_columns(conn, table)
    row = {key: value for key, value in _first_row(conn, table, org).items() if key not in identity}
    for key in _unique_keys(conn, table):
        if identity & set(key):
            continue  # includes the new identity value: cannot collide
        column = next(
            (c for c in key if isinstance(row[c], str | int) and "_id" not in c), "user_id"
        )
        value = row[column]
        if column == "user_id":
            row[column] = _scalar(
                conn,
                "SELECT coalesce((SELECT id FROM users WHERE organization_id = %s"
                " AND email = %s), gen_random_uuid())",
                (org.org, MEMBER_TO_BE),
            )
        else:
            row[column] = value + SUFFIX if isinstance(value, str) else value + 1000
    return row


def completion_row(conn: Conn, org: Org) -> dict[str, Any]:
    """What a design client inserts into rule_versions after changing a rule: the row of the
    version the database wrote (same rule and version), with its own change_reason."""
    identity = _identity_columns(conn, "rule_versions")
    written = _first_row(conn, "rule_versions", org, last=True)
    return {k: v for k, v in written.items() if k not in identity} | {"change_reason": SUFFIX}


def insert_statement(table: str, row: dict[str, Any]) -> tuple[sql.Composed, tuple[Any, ...]]:
    columns = sql.SQL(", ").join(map(sql.Identifier, row))
    statement = sql.SQL(
        "INSERT INTO {table} ({columns})"
        " SELECT {columns} FROM jsonb_populate_record(NULL::{table}, %s)"
    ).format(table=sql.Identifier(table), columns=columns)
    return statement, (Jsonb(row, dumps=lambda value: json.dumps(value, default=str)),)


def statement_for(
    conn: Conn, table: str, action: str, world: World
) -> tuple[sql.Composed, tuple[Any, ...]]:
    """The SQL of ``action`` aimed at organization A's rows of ``table``."""
    target = sql.Identifier(table)
    column, value = owner_key(table, world.a)
    # The last row: for users, a colleague rather than the acting admin.
    row_id = _first_row(conn, table, world.a, last=True)["id"]
    if action == "select":
        query = sql.SQL(
            "SELECT count(*) FILTER (WHERE {c} = %s), count(*) FILTER (WHERE {c} <> %s) FROM {t}"
        ).format(c=sql.Identifier(column), t=target)
        return query, (value, value)
    if action == "insert":
        if table == "rule_versions":
            return insert_statement(table, completion_row(conn, world.a))
        return insert_statement(table, derived_row(conn, table, world.a))
    if action == "delete":
        return sql.SQL("DELETE FROM {} WHERE id = %s").format(target), (row_id,)
    # update: write the row's own value back; move: hand the row to organization B.
    moved, new = ("tenant_id", world.b.tenant) if table == "organizations" else (column, None)
    if table in TENANCY_TABLES and action == "update":
        moved = "name"
    assignment = (
        sql.SQL("{c} = {c}").format(c=sql.Identifier(moved))
        if action == "update"
        else sql.SQL("{c} = %s").format(c=sql.Identifier(moved))
    )
    params: tuple[Any, ...] = (row_id,) if action == "update" else (new or world.b.org, row_id)
    return sql.SQL("UPDATE {} SET {} WHERE id = %s").format(target, assignment), params


@dataclass(frozen=True)
class Outcome:
    """What the app role got: a count (rows read or written) or the error it raised."""

    count: Any = None
    error: psycopg.Error | None = None


def as_app(
    conn: Conn, user_setting: str | None, statement: sql.Composed, params: tuple[Any, ...]
) -> Outcome:
    """Run one statement as the app role with ``app.current_user_id`` set to
    ``user_setting`` (left unset when None), in a savepoint; back to the owner afterwards."""
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(APP_ROLE)))
            if user_setting is not None:
                conn.execute("SELECT set_config('app.current_user_id', %s, true)", (user_setting,))
            cursor = conn.execute(statement, params)
            outcome = Outcome(count=cursor.fetchone() if cursor.description else cursor.rowcount)
    except psycopg.Error as error:
        outcome = Outcome(error=error)
    conn.execute("RESET ROLE")
    conn.execute("SELECT set_config('app.current_user_id', '', true)")
    return outcome


def expected(table: str, action: str, actor: str, granted: bool) -> str:
    """``visible``, ``hidden`` (0 rows read), ``written`` (1 row), ``untouched`` (0 rows),
    ``refused`` (the policy's error) or ``denied`` (no privilege at all)."""
    if action == "select":
        return "visible" if actor == "own" else "hidden"
    if not granted:
        return "denied"
    if action == "insert":
        return "written" if actor == "own" else "refused"
    if action == "move":
        return "refused" if actor == "own" else "untouched"
    return "written" if actor == "own" else "untouched"


def observed(outcome: Outcome) -> str:
    if isinstance(outcome.error, errors.InsufficientPrivilege):
        message = outcome.error.diag.message_primary or ""
        return "refused" if message.startswith(RLS_REFUSED) else "denied"
    if (
        isinstance(outcome.error, errors.CheckViolation)
        and outcome.error.diag.constraint_name == COMPLETION_REFUSED
    ):
        return "refused"
    assert outcome.error is None, f"unexpected error: {outcome.error!r}"
    if isinstance(outcome.count, tuple):
        own, foreign = outcome.count
        return "visible" if own >= 1 and foreign == 0 else "hidden" if own == 0 else "leaked"
    return {0: "untouched", 1: "written"}.get(outcome.count, f"{outcome.count} rows")


# ---------------------------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------------------------


def test_the_matrix_covers_every_table_the_catalog_has(owner: Conn) -> None:
    """Every table with an organization_id column is in the matrix, and every other table is
    either tenancy (reached through its organization) or the migration history."""
    owned = owner.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"
        " AND a.attname = 'organization_id' AND NOT a.attisdropped ORDER BY 1"
    ).fetchall()
    others = owner.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'p', 'v', 'm', 'f') AND relname <> ALL(%s) ORDER BY 1",
        (TENANT_OWNED_TABLES,),
    ).fetchall()
    assert [t for (t,) in owned] == TENANT_OWNED_TABLES
    assert [t for (t,) in others] == ["migrationpilot_schema_history", *TENANCY_TABLES]


@pytest.mark.parametrize(("table", "action", "actor"), list(_cases()))
def test_isolation_matrix(owner: Conn, world: World, table: str, action: str, actor: str) -> None:
    spelled = {"own": str(world.a.user), "other": str(world.b.user), **MALFORMED}[actor]
    user_setting = spelled(world.a.user) if callable(spelled) else spelled
    granted = action == "select" or bool(
        _scalar(
            owner,
            "SELECT has_table_privilege(%s, %s, %s)",
            (APP_ROLE, table, PRIVILEGE[action]),
        )
    )
    with owner.transaction(force_rollback=True):
        if table == "rule_versions":
            # A client completes only a version its own transaction wrote: change A's rule
            # here, so that its newest version is this transaction's.
            owner.execute(
                "UPDATE business_rules SET name = name || '.' WHERE id = %s", (world.a.rule,)
            )
        statement, params = statement_for(owner, table, action, world)
        before = digest(owner)
        outcome = as_app(owner, user_setting, statement, params)
        after = digest(owner)
    assert observed(outcome) == expected(table, action, actor, granted)
    if expected(table, action, actor, granted) == "written":
        assert after[table] != before[table]
    else:
        assert after == before  # re-read as the owner: nothing changed anywhere


# ---------------------------------------------------------------------------------------------
# Catalog probes
# ---------------------------------------------------------------------------------------------

# Schemas that are not PostgreSQL's own.
_USER_SCHEMAS = sql.SQL("n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'")


def test_every_security_definer_function_pins_a_search_path_the_app_cannot_write(
    owner: Conn,
) -> None:
    definers = owner.execute(
        sql.SQL(
            "SELECT p.oid::regprocedure::text, p.proconfig FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE p.prosecdef AND {} ORDER BY 1"
        ).format(_USER_SCHEMAS)
    ).fetchall()
    assert len(definers) >= 4  # current_organization_id, current_tenant_id, the triggers
    paths = {
        name: next((s for s in config or [] if s.startswith("search_path=")), None)
        for name, config in definers
    }
    assert [name for name, path in paths.items() if path is None] == []
    # A schema on that path where the app could CREATE would let it shadow what the
    # function calls.
    schemas = {s.strip() for path in paths.values() for s in path.split("=", 1)[1].split(",")}
    writable = [
        schema
        for schema in sorted(schemas)
        if _scalar(owner, "SELECT has_schema_privilege(%s, %s, 'CREATE')", (APP_ROLE, schema))
    ]
    assert writable == []


def test_the_app_role_cannot_bypass_row_level_security_by_any_route(owner: Conn) -> None:
    """No SUPERUSER or BYPASSRLS, not even through a role it is a member of, and it owns no
    object (an owner is not subject to its table's policies unless they are FORCEd)."""
    privileged = owner.execute(
        "SELECT rolname FROM pg_roles WHERE pg_has_role(%s, oid, 'MEMBER')"
        " AND (rolsuper OR rolbypassrls)",
        (APP_ROLE,),
    ).fetchall()
    owned = owner.execute(
        """
        SELECT 'relation ' || relname || ' (' || relkind::text || ')' FROM pg_class
         WHERE relowner = %(role)s::regrole
        UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proowner = %(role)s::regrole
        UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typowner = %(role)s::regrole
        UNION ALL SELECT 'schema ' || nspname FROM pg_namespace
         WHERE nspowner = %(role)s::regrole
        UNION ALL SELECT 'database ' || datname FROM pg_database WHERE datdba = %(role)s::regrole
        """,
        {"role": APP_ROLE},
    ).fetchall()
    assert privileged == []
    assert owned == []


@pytest.mark.parametrize("table", MATRIX_TABLES)
def test_row_level_security_covers_every_command_the_app_may_run(owner: Conn, table: str) -> None:
    """RLS is on, and each privilege the app holds has a policy for the app: a grant without
    a policy would be a table the app sees nothing of (harmless), a policy for the wrong
    command a hole. Not FORCEd on purpose: the owner is the operator path, and the app owns
    nothing, so FORCE would change nothing for it."""
    enabled, forced = owner.execute(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
        (table,),
    ).fetchone() or (None, None)
    uncovered = owner.execute(
        """
        SELECT privilege FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS privilege
        WHERE has_table_privilege(%(role)s, %(table)s, privilege)
          AND NOT EXISTS (
              SELECT 1 FROM pg_policies
              WHERE schemaname = 'public' AND tablename = %(table)s
                AND %(role)s = ANY(roles) AND cmd IN ('ALL', privilege))
        """,
        {"role": APP_ROLE, "table": table},
    ).fetchall()
    truncate = _scalar(owner, "SELECT has_table_privilege(%s, %s, 'TRUNCATE')", (APP_ROLE, table))
    assert (enabled, forced) == (True, False)
    assert uncovered == []
    assert truncate is False  # TRUNCATE ignores row level security


_INVOKER_VIEWS = sql.SQL("""
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {} AND (c.relkind = 'm' OR (c.relkind = 'v'
      AND NOT coalesce('security_invoker=true' = ANY(c.reloptions), false)))
""").format(_USER_SCHEMAS)


def test_views_run_with_the_invoker_rights_and_there_is_no_materialized_view(
    owner: Conn,
) -> None:
    """A view runs as its owner unless security_invoker: it would read past every policy. A
    materialized view has no row level security at all."""
    assert owner.execute(_INVOKER_VIEWS).fetchall() == []
    with owner.transaction(force_rollback=True):  # the check finds what it should
        owner.execute("CREATE VIEW probe_owner_view AS SELECT id FROM projects")
        owner.execute(
            "CREATE VIEW probe_invoker_view WITH (security_invoker = true)"
            " AS SELECT id FROM projects"
        )
        assert owner.execute(_INVOKER_VIEWS).fetchall() == [("probe_owner_view",)]


# ---------------------------------------------------------------------------------------------
# What a unique or foreign key violation tells a user about another organization
# ---------------------------------------------------------------------------------------------


def _error_of(outcome: Outcome) -> tuple[str | None, str | None, str | None, str | None]:
    """What a user reads from an outcome: SQLSTATE, message, detail, constraint."""
    if outcome.error is None:
        return (None, f"{outcome.count} rows", None, None)
    diag = outcome.error.diag
    return (diag.sqlstate, diag.message_primary, diag.message_detail, diag.constraint_name)


def _probe(
    conn: Conn, world: World, statement: sql.Composed, params: tuple[Any, ...]
) -> tuple[str | None, ...]:
    with conn.transaction(force_rollback=True):
        return _error_of(as_app(conn, str(world.a.user), statement, params))


def _masked(answer: tuple[str | None, ...], given: dict[str, Any]) -> tuple[str | None, ...]:
    """``answer`` with each of the ``given`` values quoted in its message or detail replaced by
    the column's name (longest values first, whole words only)."""

    def mask(text: str | None) -> str | None:
        for column, value in sorted(given.items(), key=lambda item: -len(str(item[1]))):
            if text is not None and value is not None:
                text = re.sub(rf"(?<![\w-]){re.escape(str(value))}(?![\w-])", f"<{column}>", text)
        return text

    sqlstate, message, detail, constraint = answer
    return (sqlstate, mask(message), mask(detail), constraint)


def _claiming_a(row: dict[str, Any], world: World) -> dict[str, Any]:
    """``row`` (of organization B) as a row of A: what a user of A may try to insert."""
    claimed = {**row, "organization_id": world.a.org}
    if "tenant_id" in claimed:
        claimed["tenant_id"] = world.a.tenant
    return claimed


@pytest.mark.parametrize("table", [t for t in TENANT_OWNED_TABLES if t != "users"])
def test_a_key_of_another_organization_reveals_nothing_on_insert(
    owner: Conn, world: World, table: str
) -> None:
    """A's admin inserts, into A, a copy of B's row (every unique key value of B, B's parent
    ids) and a copy with fresh key values: the two answers are the same, so the error does not
    tell whether B's row exists. (users is the declared exception: emails are global.) An
    error may quote the key values it was given ("rule X has no version 1 to complete"): the
    caller's own input, masked before the answers are compared."""
    identity = _identity_columns(owner, table)
    existing = {k: v for k, v in _first_row(owner, table, world.b).items() if k not in identity}
    fresh = derived_row(owner, table, world.b)
    keyed = {c for key in _unique_keys(owner, table) for c in key} - identity

    def answer(row: dict[str, Any]) -> tuple[str | None, ...]:
        claimed = _claiming_a(row, world)
        found = _probe(owner, world, *insert_statement(table, claimed))
        return _masked(found, {c: claimed[c] for c in keyed})

    assert answer(existing) == answer(fresh)


@pytest.mark.parametrize("table", ["source_files", "generated_files", "business_rules"])
def test_a_key_of_another_organization_reveals_nothing_on_update(
    owner: Conn, world: World, table: str
) -> None:
    """The same through UPDATE: A's own row takes B's project id and B's key values."""
    b_row = _first_row(owner, table, world.b)
    a_id = _first_row(owner, table, world.a)["id"]
    keyed = sorted(
        {c for key in _unique_keys(owner, table) for c in key} - {"id", "organization_id"}
    )

    def moved_to(values: dict[str, Any]) -> tuple[sql.Composed, tuple[Any, ...]]:
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(c)) for c in keyed
        )
        query = sql.SQL("UPDATE {} SET {} WHERE id = %s").format(sql.Identifier(table), assignments)
        return query, (*(values[c] for c in keyed), a_id)

    fresh = derived_row(owner, table, world.b)
    assert _probe(owner, world, *moved_to(b_row)) == _probe(owner, world, *moved_to(fresh))


def test_a_duplicate_email_reveals_only_that_the_address_is_registered(
    owner: Conn, world: World
) -> None:
    """The one declared inference: emails are unique across all organizations (one login, one
    organization), so adding a user whose email another organization uses fails, and that
    says the address is registered somewhere. Not where, nor anything about that user. The
    same in other letter case: emails are unique without regard to case."""
    statement = sql.SQL("INSERT INTO users (email, name, organization_id) VALUES (%s, 'Probe', %s)")
    taken = _probe(owner, world, statement, (world.b.email, world.a.org))
    shouted = _probe(owner, world, statement, (world.b.email.upper(), world.a.org))
    free = _probe(owner, world, statement, ("nobody@b.example", world.a.org))
    assert (
        taken
        == shouted
        == (
            "23505",
            'duplicate key value violates unique constraint "users_email_key"',
            None,  # no "Key (email)=(...)": row level security withholds the values
            "users_email_key",
        )
    )
    assert free == (None, "1 rows", None, None)


def test_a_taken_id_can_be_probed_but_tells_nothing_else(owner: Conn, world: World) -> None:
    """Keys are unique across all organizations, and an INSERT may name its id (the design's
    clients may): one that another organization's row holds fails, so a user who already
    knows an id learns that it is in use. Nothing more: not the row's contents (no detail),
    and, ids being random uuids rather than a sequence, nothing about how many rows exist."""
    statement = sql.SQL(
        "INSERT INTO projects (id, name, organization_id, source_language, target_language)"
        " VALUES (%s, 'probe', %s, 'cobol', 'java')"
    )
    taken = _probe(owner, world, statement, (world.b.project, world.a.org))
    free = _probe(owner, world, statement, (uuid4(), world.a.org))
    assert taken[0] == "23505" and taken[2] is None and taken[3] == "projects_pkey"
    assert free == (None, "1 rows", None, None)
    keys = [key for (key,) in owner.execute("SELECT id FROM projects")]
    assert {key.version for key in keys} == {4}  # random (gen_random_uuid()), not a counter


# ---------------------------------------------------------------------------------------------
# The same promise through the CLI
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demo:
    url: str
    project: UUID
    rule: UUID
    test_case: UUID
    directory: str


@pytest.fixture(scope="module")
def demo(
    server: Server, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """The demo (organization acme-lending of tenant acme-bank, lead@acme.test its admin),
    plus the admins of a sibling organization in the same tenant and of another tenant."""
    name = server.create_database(template=template_database)
    url = with_database(server.url, name)
    directory = tmp_path_factory.mktemp("cross-org")
    (directory / "src").mkdir()
    (directory / "src" / "NEW.cbl").write_text("       IDENTIFICATION DIVISION.\n")
    (directory / "rules.jsonl").write_text(
        '{"name": "x", "description": "x", "logic": "x", "category": "decision",'
        ' "confidence": 0.5, "source_file": "src/LOANCALC.cbl", "source_start_line": 1,'
        ' "source_end_line": 2}\n'
    )
    try:
        for command in (
            ("demo", "load"),
            ("orgs", "create", "Acme Cards", "--slug", "acme-cards", "--tenant", "acme-bank"),
            ("users", "add", "carl@acme.test", "--name", "Carl", "--org", "acme-cards"),
            ("tenants", "create", "Globex", "--slug", "globex"),
            ("orgs", "create", "Globex Ops", "--slug", "globex-ops", "--tenant", "globex"),
            ("users", "add", "bob@globex.test", "--name", "Bob", "--org", "globex-ops"),
            ("users", "set-role", "carl@acme.test", "admin"),
            ("users", "set-role", "bob@globex.test", "admin"),
        ):
            result = run_cli("--database-url", url, *command)
            assert result.exit_code == 0, (command, result.stderr)
        with psycopg.connect(url) as conn:
            # The project's first rule and test case (in the order the demo loaded them).
            project, rule, case = conn.execute(
                "SELECT p.id,"
                " (SELECT r.id FROM business_rules r WHERE r.project_id = p.id"
                "  ORDER BY r.created_at, r.ctid LIMIT 1),"
                " (SELECT t.id FROM test_cases t WHERE t.project_id = p.id"
                "  ORDER BY t.created_at, t.ctid LIMIT 1)"
                " FROM projects p WHERE p.name = 'Loans core'"
            ).fetchone() or (None, None, None)
        assert None not in (project, rule, case)
        # A case for the project's own rule: only the project can make the import fail.
        (directory / "cases.jsonl").write_text(
            json.dumps({"rule_id": str(rule), "name": "x", "inputs": {}, "expected": 1}) + "\n"
        )
        yield Demo(url, project, rule, case, str(directory))
    finally:
        server.drop_database(name)


def _cross_org_commands(d: Demo) -> dict[str, list[str]]:
    """Everything a user might try on acme-lending's project, rules and people."""
    p, r, t = str(d.project), str(d.rule), str(d.test_case)
    return {
        "projects show by name": ["projects", "show", "Loans core"],
        "projects show by id": ["projects", "show", p],
        "projects show by short id": ["projects", "show", d.project.hex[:8]],
        "projects set-status": ["projects", "set-status", p, "designing"],
        "projects list --org": ["projects", "list", "--org", "acme-lending"],
        "files list": ["files", "list", "-p", p],
        "files show": ["files", "show", "src/LOANCALC.cbl", "-p", p],
        "files import": ["files", "import", d.directory, "-p", p],
        "rules list": ["rules", "list", "-p", p],
        "rules show": ["rules", "show", r],
        "rules show by short id": ["rules", "show", d.rule.hex[:8]],
        "rules history": ["rules", "history", r],
        "rules diff": ["rules", "diff", r],
        "rules edit": ["rules", "edit", r, "--name", "mine now", "--reason", "probe"],
        "rules export": ["rules", "export", "-p", p, "--format", "json"],
        "rules import": ["rules", "import", f"{d.directory}/rules.jsonl", "-p", p],
        "rules revalidate": ["rules", "revalidate", "-p", p],
        "review approve": ["review", "approve", r],
        "review reject": ["review", "reject", r, "--comment", "probe"],
        "review clarify": ["review", "clarify", r, "--comment", "probe"],
        "tests list": ["tests", "list", "-p", p],
        "tests show": ["tests", "show", t],
        "tests show by short id": ["tests", "show", d.test_case.hex[:8]],
        "tests import": ["tests", "import", f"{d.directory}/cases.jsonl", "-p", p],
        "generated list": ["generated", "list", "-p", p],
        "generated show": ["generated", "show", "src/main/resources/application.yml", "-p", p],
        "generated import": ["generated", "import", d.directory, "-p", p],
        "generated export": ["generated", "export", f"{d.directory}/out", "-p", p],
        "routing list": ["routing", "list", "-p", p],
        "routing show": ["routing", "show", "loan-interest", "-p", p],
        "routing add": [
            "routing",
            "add",
            "-p",
            p,
            "--name",
            "x",
            "--pattern",
            "/x",
            "--target",
            "x-svc",
        ],
        "routing set": ["routing", "set", "loan-interest", "-p", p, "--traffic", "100"],
        "routing enable": ["routing", "enable", "payoff-quote", "-p", p],
        "routing disable": ["routing", "disable", "loan-interest", "-p", p],
        "routing remove": ["routing", "remove", "loan-interest", "-p", p],
        "routing resolve": ["routing", "resolve", "/api/loans/1/interest", "-p", p],
        "routing export": ["routing", "export", "-p", p, "--format", "nginx"],
        "projects members list": ["projects", "members", "list", p],
        "projects members add": ["projects", "members", "add", p, "ana@acme.test"],
        "users show": ["users", "show", "ana@acme.test"],
        "users set-role": ["users", "set-role", "ana@acme.test", "viewer"],
        "users disable": ["users", "disable", "ana@acme.test"],
        "users remove": ["users", "remove", "ana@acme.test"],
        "orgs show": ["orgs", "show", "acme-lending"],
    }


CROSS_ORG_ACTORS = {
    "sibling organization": "carl@acme.test",
    "other tenant": "bob@globex.test",
}


@pytest.mark.parametrize("actor", list(CROSS_ORG_ACTORS))
@pytest.mark.parametrize("what", list(_cross_org_commands(Demo("", *[UUID(int=0)] * 3, ""))))
def test_another_organizations_admin_finds_nothing_through_the_cli(
    demo: Demo, what: str, actor: str
) -> None:
    with psycopg.connect(demo.url, autocommit=True) as conn:
        before = digest(conn)
        result = run_cli(
            "--database-url", demo.url, "--as", CROSS_ORG_ACTORS[actor],
            *_cross_org_commands(demo)[what],
        )  # fmt: skip
        after = digest(conn)
    assert (result.exit_code, result.stdout) == (4, ""), result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert after == before


@pytest.mark.parametrize(("actor", "code"), [("sibling organization", 0), ("other tenant", 4)])
def test_the_tenant_is_visible_to_its_organizations_only(demo: Demo, actor: str, code: int) -> None:
    result = run_cli(
        "--database-url", demo.url, "--as", CROSS_ORG_ACTORS[actor], "tenants", "show", "acme-bank"
    )
    assert result.exit_code == code, result.stderr


@pytest.mark.parametrize("actor", list(CROSS_ORG_ACTORS))
@pytest.mark.parametrize(
    "listing",
    [
        ["projects", "list"],
        ["rules", "list"],
        ["tests", "list"],
        ["routing", "list"],
        ["users", "list"],
        ["orgs", "list"],
        ["tenants", "list"],
    ],
)
def test_listings_show_none_of_another_organizations_rows(
    demo: Demo, listing: list[str], actor: str
) -> None:
    result = run_cli(
        "--database-url", demo.url, "--as", CROSS_ORG_ACTORS[actor], *listing, "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    text = json.dumps(shown)
    assert "acme-lending" not in text and "Loans core" not in text and "ana@acme.test" not in text


@pytest.mark.parametrize(
    ("acting", "code", "message"),
    [
        ("nobody@acme.test", 4, "error: no user with email nobody@acme.test"),
        ("abc", 4, "error: no user with email abc"),
        ("-1", 4, "error: no user with email -1"),
        ("", 2, "error: --as is empty"),
        ("   ", 2, "error: --as is empty"),
    ],
)
def test_an_unknown_or_empty_acting_user_is_refused_before_anything_runs(
    demo: Demo, acting: str, code: int, message: str
) -> None:
    """The CLI never passes a raw id: --as names a user by email, looked up first; an empty
    --as is refused rather than quietly falling back to operator mode (the owner, no RLS)."""
    with psycopg.connect(demo.url, autocommit=True) as conn:
        before = digest(conn)
        result = run_cli("--database-url", demo.url, f"--as={acting}", "rules", "list")
        after = digest(conn)
    assert (result.exit_code, result.stdout) == (code, "")
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert after == before


def test_a_tenant_limit_error_reveals_the_tenants_total_use(owner: Conn, world: World) -> None:
    """Declared: limits are per tenant, so a refusal counts the rows of every organization of
    the tenant, including those the acting user cannot see (docs/schema.md, V0004)."""
    with owner.transaction(force_rollback=True):
        owner.execute("UPDATE tenants SET max_projects = 1 WHERE id = %s", (world.a.tenant,))
        sibling = _scalar(
            owner,
            "INSERT INTO organizations (tenant_id, name, slug) VALUES (%s, 'Sibling', 'sibling')"
            " RETURNING id",
            (world.a.tenant,),
        )
        user = _scalar(
            owner,
            "INSERT INTO users (email, name, organization_id, role)"
            " VALUES ('s@sibling.example', 'S', %s, 'admin') RETURNING id",
            (sibling,),
        )
        statement = sql.SQL(
            "INSERT INTO projects (name, organization_id, source_language, target_language)"
            " VALUES ('mine', %s, 'cobol', 'java')"
        )
        outcome = as_app(owner, str(user), statement, (sibling,))
        visible = as_app(owner, str(user), sql.SQL("SELECT count(*) FROM projects"), ())
    assert visible.count == (0,)
    assert isinstance(outcome.error, errors.CheckViolation)
    assert outcome.error.diag.message_primary == (
        "tenant t-a: project limit reached (max_projects 1, 1 in use, creating 1 more)"
    )
