"""The schema itself, proved against a real PostgreSQL.

Every seed table, column, enum value and index exists; every foreign key is indexed; row level
security is enabled on every tenant table and a user of one organization sees and changes no row
of another through the app role; rule_versions gets a row when a rule changes; the CHECK, UNIQUE
and FOREIGN KEY constraints refuse what they promise to refuse.

Tests that leave no trace (catalog reads, reads through the app role, writes that must fail or
affect no row) share one seeded database; tests that change data get the fresh database of the
``conn`` fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors, sql

from migrationpilot_cli.db.connect import APP_ROLE, act_as
from tests.conftest import Server, rows, with_database

Conn = psycopg.Connection[Any]
SHA = "0" * 64

# Every column: the design's (../shared/contract/schema.ts and diagram.ts), with its type and
# length, then ours. Types as information_schema spells them (varchar with its length); a
# trailing "?" marks a nullable column. NOT NULL is at least as strict as the design.
TS = "timestamp with time zone"
EXPECTED_COLUMNS: dict[str, dict[str, str]] = {
    "tenants": {
        "id": "uuid",
        "name": "varchar(255)",
        "slug": "varchar(100)",
        "subscription": "varchar(50)",
        "max_projects": "integer",
        "max_users_per_project": "integer",
        "max_lines_of_code": "integer",
        "data_retention_days": "integer",
        "created_at": TS,
        "settings": "jsonb",
        "updated_at": TS,
    },
    "organizations": {
        "id": "uuid",
        "name": "varchar(255)",
        "slug": "varchar(100)",
        "settings": "jsonb",
        "created_at": TS,
        "updated_at": TS,
        "tenant_id": "uuid",
    },
    "users": {
        "id": "uuid",
        "email": "varchar(255)",
        "name": "varchar(255)",
        "organization_id": "uuid",
        "role": "user_role",
        "created_at": TS,
        "updated_at": TS,
        "disabled_at": TS + "?",
        "disabled_reason": "text?",
    },
    "projects": {
        "id": "uuid",
        "name": "varchar(255)",
        "description": "text?",
        "organization_id": "uuid",
        "source_language": "source_language",
        "target_language": "target_language",
        "target_framework": "varchar(100)?",
        "status": "project_status",
        "settings": "jsonb",
        "statistics": "jsonb",
        "created_by": "uuid?",
        "created_at": TS,
        "updated_at": TS,
        "failed_from": "project_status?",
    },
    "source_files": {
        "id": "uuid",
        "project_id": "uuid",
        "path": "varchar(500)",
        "content": "text",
        "language": "source_file_kind",
        "organization_id": "uuid",
        "encoding": "text",
        "size_bytes": "bigint",
        "sha256": "text",
        "line_count": "integer",
        "code_lines": "integer",
        "comment_lines": "integer",
        "blank_lines": "integer",
        "created_at": TS,
        "updated_at": TS,
    },
    "business_rules": {
        "id": "uuid",
        "project_id": "uuid",
        "name": "varchar(255)",
        "description": "text",
        "category": "rule_category",
        "source_file": "varchar(500)",
        "source_start_line": "integer",
        "source_end_line": "integer",
        "source_code": "text",
        "inputs": "jsonb",
        "outputs": "jsonb",
        "logic": "text",
        "formula": "text?",
        "confidence": "numeric(4,3)",
        "review_status": "review_status",
        "reviewed_by": "uuid?",
        "review_comments": "text?",
        "extracted_at": TS,
        "version": "integer",
        "organization_id": "uuid",
        "reviewed_at": TS + "?",
        "source_hash": "text?",
        "created_at": TS,
        "updated_at": TS,
        "last_edited_by": "uuid?",
    },
    "rule_versions": {
        "id": "uuid",
        "rule_id": "uuid",
        "version": "integer",
        "snapshot": "jsonb",
        "changed_by": "uuid?",
        "change_reason": "text?",
        "created_at": TS,
        "organization_id": "uuid",
    },
    "generated_files": {
        "id": "uuid",
        "project_id": "uuid",
        "path": "varchar(500)",
        "content": "text",
        "type": "generated_file_type",
        "organization_id": "uuid",
        "language": "target_language?",
        "rule_id": "uuid?",
        "size_bytes": "bigint",
        "line_count": "integer",
        "sha256": "text",
        "created_at": TS,
        "updated_at": TS,
    },
    "test_cases": {
        "id": "uuid",
        "project_id": "uuid",
        "rule_id": "uuid",
        "inputs": "jsonb",
        "expected": "jsonb",
        "organization_id": "uuid",
        "name": "text",
        "description": "text?",
        "created_at": TS,
        "updated_at": TS,
    },
    "audit_logs": {
        "id": "uuid",
        "organization_id": "uuid?",
        "user_id": "uuid?",
        "action": "varchar(100)",
        "resource_type": "varchar(100)",
        "resource_id": "uuid?",
        "metadata": "jsonb",
        "ip_address": "varchar(45)?",
        "created_at": TS,
        "tenant_id": "uuid",
        "actor_email": "varchar(255)?",
        "db_role": "text",
    },
    "routing_rules": {
        "id": "uuid",
        "project_id": "uuid",
        "name": "varchar(255)",
        "path_pattern": "varchar(500)",
        "target_service": "varchar(50)",
        "traffic_percentage": "integer",
        "shadow_mode": "boolean",
        "enabled": "boolean",
        "created_at": TS,
        "organization_id": "uuid",
        "slug": "text",
        "updated_at": TS,
    },
    # Ours (V0015, V0016).
    "project_members": {
        "id": "uuid",
        "organization_id": "uuid",
        "project_id": "uuid",
        "user_id": "uuid",
        "role": "user_role",
        "created_at": TS,
        "updated_at": TS,
    },
    "people": {
        "id": "uuid",
        "organization_id": "uuid",
        "email": "varchar(255)",
        "name": "varchar(255)",
        "created_at": TS,
        "updated_at": TS,
        "removed_at": TS + "?",
    },
}

EXPECTED_ENUMS: dict[str, list[str]] = {
    "project_status": [
        "draft",
        "analyzing",
        "analysis_complete",
        "designing",
        "design_complete",
        "generating",
        "generation_complete",
        "validating",
        "validation_complete",
        "completed",
        "failed",
    ],
    "source_language": ["cobol", "fortran", "vb6", "vba", "java-legacy"],
    "target_language": ["java", "python", "typescript", "go", "csharp"],
    "rule_category": [
        "calculation",
        "validation",
        "decision",
        "transformation",
        "workflow",
        "constraint",
    ],
    "review_status": ["pending", "approved", "rejected", "needs_clarification"],
    "user_role": ["admin", "architect", "reviewer", "developer", "viewer"],
    "generated_file_type": ["source", "test", "config", "doc"],
    "source_file_kind": ["cobol", "cobol-copybook", "fortran", "vb6", "vba", "java", "jcl"],
}

TENANCY_TABLES = ["tenants", "organizations"]
TENANT_OWNED_TABLES = [
    "users",
    "projects",
    "source_files",
    "business_rules",
    "rule_versions",
    "generated_files",
    "test_cases",
    "audit_logs",
    "routing_rules",
    "project_members",
    "people",
]
ALL_TABLES = TENANCY_TABLES + TENANT_OWNED_TABLES
APPEND_ONLY_TABLES = ["rule_versions", "audit_logs"]
# Written by the database's triggers only (V0016); the app role reads it.
READ_ONLY_TABLES = ["people"]
# Tables the app role may UPDATE and DELETE (its own organization's rows).
APP_WRITABLE_TABLES = [
    t for t in TENANT_OWNED_TABLES if t not in APPEND_ONLY_TABLES + READ_ONLY_TABLES
]
MUTABLE_TABLES = [t for t in ALL_TABLES if "updated_at" in EXPECTED_COLUMNS[t]]
HISTORY_TABLE = "migrationpilot_schema_history"
RLS_REFUSED = "new row violates row-level security policy"
NO_GRANT = "permission denied"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def scalar(conn: Conn, query: str | sql.Composable, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def table_sql(template: str, table: str) -> sql.Composed:
    return sql.SQL(template).format(sql.Identifier(table))


@dataclass(frozen=True)
class Org:
    tenant: UUID
    org: UUID
    user: UUID
    email: str
    project: UUID
    source_file: UUID
    rule: UUID
    routing_rule: UUID
    audit: UUID


@dataclass(frozen=True)
class World:
    a: Org
    b: Org


def seed(conn: Conn) -> World:
    """Two tenants with one organization each, and a row in every table for both."""
    with conn.transaction():
        return World(_seed_org(conn, "a"), _seed_org(conn, "b"))


def _seed_org(conn: Conn, key: str) -> Org:
    def insert(query: str, params: tuple[Any, ...]) -> UUID:
        found: UUID = scalar(conn, query + " RETURNING id", params)
        return found

    tenant = insert("INSERT INTO tenants (name, slug) VALUES (%s, %s)", (f"T {key}", f"t-{key}"))
    org = insert(
        "INSERT INTO organizations (tenant_id, name, slug) VALUES (%s, %s, %s)",
        (tenant, f"Org {key}", f"org-{key}"),
    )
    email = f"{key}@{key}.example"
    user = insert(
        "INSERT INTO users (email, name, organization_id, role) VALUES (%s, %s, %s, 'admin')",
        (email, f"User {key}", org),
    )
    project = insert(
        "INSERT INTO projects (name, organization_id, source_language, target_language,"
        " created_by) VALUES (%s, %s, 'cobol', 'java', %s)",
        (f"project-{key}", org, user),
    )
    source_file = insert(
        "INSERT INTO source_files (organization_id, project_id, path, content, language,"
        " size_bytes, sha256) VALUES (%s, %s, %s, %s, 'cobol', 0, %s)",
        (org, project, "src/MAIN.cbl", "", SHA),
    )
    rule = insert(
        "INSERT INTO business_rules (organization_id, project_id, name, description, category,"
        " source_file, source_start_line, source_end_line, source_code, logic, confidence)"
        " VALUES (%s, %s, %s, '', 'calculation', 'src/MAIN.cbl', 1, 1, '', '', %s)",
        (org, project, f"rule-{key}", Decimal("0.5")),
    )
    insert(
        "INSERT INTO generated_files (organization_id, project_id, path, content, rule_id,"
        " size_bytes, sha256) VALUES (%s, %s, %s, %s, %s, 0, %s)",
        (org, project, "src/Main.java", "", rule, SHA),
    )
    insert(
        "INSERT INTO test_cases (organization_id, project_id, rule_id, name)"
        " VALUES (%s, %s, %s, %s)",
        (org, project, rule, "happy path"),
    )
    routing_rule = insert(
        "INSERT INTO routing_rules (organization_id, project_id, name, path_pattern,"
        " target_service) VALUES (%s, %s, %s, %s, %s)",
        (org, project, "orders", "/orders", "orders-service"),
    )
    audit = insert(
        "INSERT INTO audit_logs (tenant_id, organization_id, user_id, actor_email, action,"
        " resource_type, resource_id) VALUES (%s, %s, %s, %s, %s, 'project', %s)",
        (tenant, org, user, email, "project.create", project),
    )
    # A tenant-level action (no organization): for operators only, no app user sees it.
    insert(
        "INSERT INTO audit_logs (tenant_id, action, resource_type, resource_id)"
        " VALUES (%s, %s, 'tenant', %s)",
        (tenant, "tenant.update", tenant),
    )
    return Org(tenant, org, user, email, project, source_file, rule, routing_rule, audit)


def owner_key(table: str, org: Org) -> tuple[str, int]:
    """The column that says which organization a row belongs to, and its value for ``org``."""
    if table == "tenants":
        return "id", org.tenant
    if table == "organizations":
        return "id", org.org
    return "organization_id", org.org


def rows_of(conn: Conn, table: str, org: Org) -> list[Any]:
    """Every row of ``org`` in ``table`` as jsonb, read as the owner (RLS does not apply)."""
    column, value = owner_key(table, org)
    query = sql.SQL("SELECT to_jsonb(t) FROM {} AS t WHERE {} = %s ORDER BY t.id").format(
        sql.Identifier(table), sql.Identifier(column)
    )
    return [row[0] for row in conn.execute(query, (value,))]


def become_app_without_user(conn: Conn) -> None:
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(APP_ROLE)))


@pytest.fixture
def world(conn: Conn) -> World:
    return seed(conn)


@pytest.fixture(scope="module")
def owner(server: Server, template_database: str) -> Iterator[Conn]:
    """The owner's connection to one migrated database shared by this module's tests that
    leave no trace: catalog reads, reads through the app role, and writes that must fail."""
    name = server.create_database(template=template_database)
    try:
        with psycopg.connect(with_database(server.url, name), autocommit=True) as connection:
            yield connection
    finally:
        server.drop_database(name)


@pytest.fixture(scope="module")
def orgs(owner: Conn) -> World:
    """The two organizations seeded once into the shared database."""
    return seed(owner)


# ---------------------------------------------------------------------------------------------
# Tables, columns, enums
# ---------------------------------------------------------------------------------------------


def test_every_seed_table_exists(owner: Conn) -> None:
    tables = owner.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    ).fetchall()
    missing = set(ALL_TABLES) - {t for (t,) in tables}
    assert sorted(missing) == []


def _columns(conn: Conn, table: str) -> dict[str, str]:
    query = """
        SELECT column_name,
               CASE WHEN data_type = 'USER-DEFINED' THEN udt_name
                    WHEN data_type = 'numeric'
                        THEN format('numeric(%%s,%%s)', numeric_precision, numeric_scale)
                    WHEN data_type = 'character varying'
                        THEN format('varchar(%%s)', character_maximum_length)
                    ELSE data_type END
               || CASE WHEN is_nullable = 'YES' THEN '?' ELSE '' END
          FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = %s
    """
    return {name: kind for name, kind in conn.execute(query, (table,))}


@pytest.mark.parametrize("table", ALL_TABLES)
def test_seed_table_has_its_columns(owner: Conn, table: str) -> None:
    actual = _columns(owner, table)
    expected = EXPECTED_COLUMNS[table]
    assert {c: actual.get(c, "<missing>") for c in expected} == expected


def test_no_timestamp_without_time_zone_anywhere(owner: Conn) -> None:
    naive = owner.execute(
        "SELECT table_name || '.' || column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'"
    ).fetchall()
    assert naive == []


def test_every_key_is_a_uuid_the_database_generates(owner: Conn) -> None:
    ids = dict(
        owner.execute(
            "SELECT table_name, column_default FROM information_schema.columns"
            " WHERE table_schema = 'public' AND column_name = 'id' AND data_type = 'uuid'"
        ).fetchall()
    )
    # people.id is its account's id (users.id), given by the trigger that records the person.
    generated = [t for t in ALL_TABLES if t != "people"]
    assert {t: ids.get(t) for t in generated} == dict.fromkeys(generated, "gen_random_uuid()")
    assert ids.get("people") is None
    not_uuid = owner.execute(
        "SELECT table_name || '.' || column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND (column_name = 'id' OR column_name LIKE '%%\\_id')"
        "   AND table_name <> %s AND data_type <> 'uuid'",
        (HISTORY_TABLE,),
    ).fetchall()
    assert not_uuid == []


def test_every_enum_has_its_values_in_order(owner: Conn) -> None:
    actual: dict[str, list[str]] = {}
    query = """
        SELECT t.typname, e.enumlabel
          FROM pg_enum AS e
          JOIN pg_type AS t ON t.oid = e.enumtypid
         WHERE t.typnamespace = 'public'::regnamespace
         ORDER BY t.typname, e.enumsortorder
    """
    for name, label in owner.execute(query):
        actual.setdefault(name, []).append(label)
    assert actual == EXPECTED_ENUMS


# ---------------------------------------------------------------------------------------------
# Indexes
# ---------------------------------------------------------------------------------------------


def _index_keys(conn: Conn, table: str) -> dict[str, list[str]]:
    """Each index of ``table`` with its key columns in order, ``DESC`` appended where used."""
    query = """
        SELECT i.indexrelid::regclass::text,
               array(SELECT pg_get_indexdef(i.indexrelid, k, true)
                            || CASE WHEN i.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END
                       FROM generate_series(1, i.indnkeyatts) AS k
                      ORDER BY k)
          FROM pg_index AS i
         WHERE i.indrelid = %s::regclass AND i.indpred IS NULL
    """
    return dict(conn.execute(query, (table,)).fetchall())


@pytest.mark.parametrize(
    ("table", "leading"),
    [
        ("projects", ["organization_id"]),
        ("business_rules", ["project_id", "review_status"]),
        ("audit_logs", ["created_at DESC"]),
        ("source_files", ["project_id"]),
    ],
)
def test_seed_index_exists(owner: Conn, table: str, leading: list[str]) -> None:
    indexes = _index_keys(owner, table)
    assert any(keys[: len(leading)] == leading for keys in indexes.values()), indexes


# A partial index serves a foreign key when its predicate is "one of the key's columns IS NOT
# NULL" (V0017): the key's lookups (`column = $1`) never look for NULL.
UNINDEXED_FOREIGN_KEYS = """
    SELECT c.conrelid::regclass::text || '.' || c.conname
      FROM pg_constraint AS c
     WHERE c.contype = 'f'
       AND c.connamespace = 'public'::regnamespace
       AND NOT EXISTS (
           SELECT 1
             FROM pg_index AS i
            WHERE i.indrelid = c.conrelid
              AND (i.indpred IS NULL
                   OR pg_get_expr(i.indpred, i.indrelid) IN (
                          SELECT '(' || quote_ident(a.attname) || ' IS NOT NULL)'
                            FROM pg_attribute AS a
                           WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)))
              AND i.indnkeyatts >= cardinality(c.conkey)
              AND (SELECT array_agg(k ORDER BY k)
                     FROM unnest((i.indkey::int2[])[0:cardinality(c.conkey) - 1]) AS k)
                  = (SELECT array_agg(k ORDER BY k) FROM unnest(c.conkey) AS k))
     ORDER BY 1
"""


def test_every_foreign_key_has_an_index_leading_with_its_columns(owner: Conn) -> None:
    foreign_keys = scalar(
        owner,
        "SELECT count(*) FROM pg_constraint"
        " WHERE contype = 'f' AND connamespace = 'public'::regnamespace",
    )
    assert foreign_keys >= 14  # the query below really has something to look at
    assert owner.execute(UNINDEXED_FOREIGN_KEYS).fetchall() == []


def test_the_foreign_key_index_check_finds_an_unindexed_key(owner: Conn) -> None:
    with owner.transaction(force_rollback=True):
        owner.execute("CREATE TABLE fk_probe (id int PRIMARY KEY, p uuid REFERENCES tenants)")
        assert owner.execute(UNINDEXED_FOREIGN_KEYS).fetchall() == [("fk_probe.fk_probe_p_fkey",)]
        owner.execute(  # misses half of the ids
            "CREATE INDEX ON fk_probe (p) WHERE p > '80000000-0000-0000-0000-000000000000'"
        )
        assert owner.execute(UNINDEXED_FOREIGN_KEYS).fetchall() == [("fk_probe.fk_probe_p_fkey",)]
        owner.execute("CREATE INDEX ON fk_probe (p) WHERE p IS NOT NULL")
        assert owner.execute(UNINDEXED_FOREIGN_KEYS).fetchall() == []


# ---------------------------------------------------------------------------------------------
# Row level security, the app role, definer functions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ALL_TABLES)
def test_row_level_security_is_enabled_with_a_policy_for_the_app(owner: Conn, table: str) -> None:
    enabled, forced = owner.execute(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
        (table,),
    ).fetchone() or (None, None)
    policies = owner.execute(
        "SELECT policyname, roles::text[] FROM pg_policies"
        " WHERE schemaname = 'public' AND tablename = %s",
        (table,),
    ).fetchall()
    assert (enabled, forced) == (True, False)  # not FORCEd: the owner is the operator path
    # audit_logs also has a restrictive INSERT policy: its rows name their real actor (V0009).
    extra = [("audit_logs_actor", [APP_ROLE])] if table == "audit_logs" else []
    assert sorted(policies) == [*extra, (f"{table}_isolation", [APP_ROLE])]


def test_every_table_but_the_migration_history_has_row_level_security(owner: Conn) -> None:
    without = owner.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'p') AND NOT relrowsecurity AND relname <> %s",
        (HISTORY_TABLE,),
    ).fetchall()
    assert without == []


def test_app_role_is_an_unprivileged_nologin_role(owner: Conn) -> None:
    attributes = owner.execute(
        "SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb"
        " FROM pg_roles WHERE rolname = %s",
        (APP_ROLE,),
    ).fetchall()
    assert attributes == [(False, False, False, False, False)]


def test_app_role_owns_nothing(owner: Conn) -> None:
    owned = owner.execute(
        """
        SELECT 'relation ' || relname FROM pg_class WHERE relowner = %(role)s::regrole
        UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proowner = %(role)s::regrole
        UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typowner = %(role)s::regrole
        UNION ALL SELECT 'schema ' || nspname
                    FROM pg_namespace WHERE nspowner = %(role)s::regrole
        """,
        {"role": APP_ROLE},
    ).fetchall()
    assert owned == []


def test_every_security_definer_function_pins_its_search_path(owner: Conn) -> None:
    definers = dict(
        owner.execute(
            "SELECT proname, proconfig FROM pg_proc"
            " WHERE prosecdef AND pronamespace = 'public'::regnamespace"
        ).fetchall()
    )
    assert {"current_organization_id", "current_tenant_id"} <= definers.keys()
    unpinned = [
        name
        for name, config in definers.items()
        if not any(setting.startswith("search_path=") for setting in config or [])
    ]
    assert unpinned == []


def test_every_mutable_table_has_the_updated_at_trigger(owner: Conn) -> None:
    triggers = owner.execute(
        """
        SELECT tgrelid::regclass::text FROM pg_trigger
         WHERE tgfoid = 'set_updated_at'::regproc AND NOT tgisinternal
           AND tgtype & 2 = 2 AND tgtype & 16 = 16  -- BEFORE, UPDATE
         ORDER BY 1
        """
    ).fetchall()
    assert [t for (t,) in triggers] == sorted(MUTABLE_TABLES)


# ---------------------------------------------------------------------------------------------
# Isolation through the app role
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ALL_TABLES)
def test_user_sees_only_rows_of_their_own_organization(
    owner: Conn, orgs: World, table: str
) -> None:
    column, mine = owner_key(table, orgs.a)
    query = sql.SQL(
        "SELECT count(*) FILTER (WHERE {c} = %s),"
        " count(*) FILTER (WHERE {c} IS DISTINCT FROM %s) FROM {t}"
    ).format(c=sql.Identifier(column), t=sql.Identifier(table))
    with owner.transaction():
        act_as(owner, orgs.a.email)
        own, foreign = owner.execute(query, (mine, mine)).fetchone() or (0, 0)
    assert own >= 1
    assert foreign == 0
    assert rows_of(owner, table, orgs.b) != []  # the other organization's rows do exist


@pytest.mark.parametrize("setting", [None, "", "abc", "-1", "99999999999999999999", "424242"])
def test_app_role_without_a_valid_acting_user_sees_nothing(
    owner: Conn, orgs: World, setting: str | None
) -> None:
    visible = {}
    with owner.transaction():
        become_app_without_user(owner)
        if setting is not None:
            owner.execute("SELECT set_config('app.current_user_id', %s, true)", (setting,))
        for table in ALL_TABLES:
            visible[table] = scalar(owner, table_sql("SELECT count(*) FROM {}", table))
        updated = owner.execute("UPDATE projects SET name = name || '!'").rowcount
    assert visible == dict.fromkeys(ALL_TABLES, 0)
    assert updated == 0


# One INSERT per tenant-owned table, aimed at organization B; params from B's ids.
INTRUSIONS: dict[str, tuple[str, Callable[[Org], tuple[Any, ...]]]] = {
    "users": (
        "INSERT INTO users (email, name, organization_id) VALUES ('x@x.example', 'X', %s)",
        lambda b: (b.org,),
    ),
    "projects": (
        "INSERT INTO projects (name, organization_id, source_language, target_language)"
        " VALUES ('intruder', %s, 'cobol', 'java')",
        lambda b: (b.org,),
    ),
    "source_files": (
        "INSERT INTO source_files (organization_id, project_id, path, content, language,"
        " size_bytes, sha256) VALUES (%s, %s, 'x.cbl', '', 'cobol', 0, %s)",
        lambda b: (b.org, b.project, SHA),
    ),
    "business_rules": (
        "INSERT INTO business_rules (description, source_file, source_start_line,"
        " source_end_line, source_code, logic, organization_id, project_id, name, category,"
        " confidence)"
        " VALUES ('', 'src/X.cbl', 1, 1, '', '', %s, %s, 'intruder', 'decision', 0.5)",
        lambda b: (b.org, b.project),
    ),
    "rule_versions": (
        "INSERT INTO rule_versions (organization_id, rule_id, version, snapshot)"
        " VALUES (%s, %s, 99, '{}')",
        lambda b: (b.org, b.rule),
    ),
    "generated_files": (
        "INSERT INTO generated_files (organization_id, project_id, path, content, size_bytes,"
        " sha256) VALUES (%s, %s, 'X.java', '', 0, %s)",
        lambda b: (b.org, b.project, SHA),
    ),
    "test_cases": (
        "INSERT INTO test_cases (organization_id, project_id, rule_id, name)"
        " VALUES (%s, %s, %s, 'intruder')",
        lambda b: (b.org, b.project, b.rule),
    ),
    "audit_logs": (
        "INSERT INTO audit_logs (tenant_id, organization_id, action)"
        " VALUES (%s, %s, 'project.delete')",
        lambda b: (b.tenant, b.org),
    ),
    "routing_rules": (
        "INSERT INTO routing_rules (organization_id, project_id, name, path_pattern,"
        " target_service) VALUES (%s, %s, 'intruder', '/x', 'x-service')",
        lambda b: (b.org, b.project),
    ),
    "project_members": (
        "INSERT INTO project_members (organization_id, project_id, user_id, role)"
        " VALUES (%s, %s, %s, 'viewer')",
        lambda b: (b.org, b.project, b.user),
    ),
    "people": (
        "INSERT INTO people (id, organization_id, email, name) VALUES (%s, %s, 'x@x.example', 'X')",
        lambda b: (b.user, b.org),
    ),
}


@pytest.mark.parametrize("table", TENANT_OWNED_TABLES)
def test_user_cannot_insert_into_another_organization(owner: Conn, orgs: World, table: str) -> None:
    statement, params = INTRUSIONS[table]
    before = rows_of(owner, table, orgs.b)
    # A client's version row only completes a version the database wrote in the acting
    # user's own organization: another organization's versions are not there to complete.
    refused: tuple[type[Exception], str] = (
        (errors.CheckViolation, "has no version")
        if table == "rule_versions"
        else (errors.InsufficientPrivilege, NO_GRANT)
        if table in READ_ONLY_TABLES
        else (errors.InsufficientPrivilege, RLS_REFUSED)
    )
    with pytest.raises(refused[0], match=refused[1]), owner.transaction():
        act_as(owner, orgs.a.email)
        owner.execute(statement, params(orgs.b))
    assert rows_of(owner, table, orgs.b) == before


@pytest.mark.parametrize("table", APP_WRITABLE_TABLES)
def test_user_cannot_update_or_delete_rows_of_another_organization(
    owner: Conn, orgs: World, table: str
) -> None:
    before = rows_of(owner, table, orgs.b)
    with owner.transaction():
        act_as(owner, orgs.a.email)
        updated = owner.execute(
            table_sql("UPDATE {} SET created_at = now() WHERE organization_id = %s", table),
            (orgs.b.org,),
        ).rowcount
        deleted = owner.execute(
            table_sql("DELETE FROM {} WHERE organization_id = %s", table), (orgs.b.org,)
        ).rowcount
    assert (updated, deleted) == (0, 0)
    assert rows_of(owner, table, orgs.b) == before


def test_user_cannot_move_their_project_to_another_organization(owner: Conn, orgs: World) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match=RLS_REFUSED), owner.transaction():
        act_as(owner, orgs.a.email)
        owner.execute(
            "UPDATE projects SET organization_id = %s WHERE id = %s", (orgs.b.org, orgs.a.project)
        )
    assert (
        scalar(owner, "SELECT organization_id FROM projects WHERE id = %s", (orgs.a.project,))
        == orgs.a.org
    )


def test_app_cannot_forge_a_rule_version_even_in_its_own_organization(
    owner: Conn, orgs: World
) -> None:
    before = rows_of(owner, "rule_versions", orgs.a)
    with pytest.raises(errors.CheckViolation, match="has no version 99"), owner.transaction():
        act_as(owner, orgs.a.email)
        owner.execute(
            "INSERT INTO rule_versions (organization_id, rule_id, version, snapshot)"
            " VALUES (%s, %s, 99, '{}')",
            (orgs.a.org, orgs.a.rule),
        )
    assert rows_of(owner, "rule_versions", orgs.a) == before


@pytest.mark.parametrize("table", [*APPEND_ONLY_TABLES, *READ_ONLY_TABLES, *TENANCY_TABLES])
@pytest.mark.parametrize(
    "statement", ["UPDATE {} SET created_at = now()", "DELETE FROM {}", "TRUNCATE {} CASCADE"]
)
def test_app_cannot_rewrite_history_or_tenancy(
    owner: Conn, orgs: World, table: str, statement: str
) -> None:
    before = rows_of(owner, table, orgs.a)
    with pytest.raises(errors.InsufficientPrivilege, match=NO_GRANT), owner.transaction():
        act_as(owner, orgs.a.email)
        owner.execute(table_sql(statement, table))
    assert rows_of(owner, table, orgs.a) == before


def test_user_cannot_file_an_audit_row_under_another_tenant(owner: Conn, orgs: World) -> None:
    before = scalar(owner, "SELECT count(*) FROM audit_logs")
    with pytest.raises(errors.InsufficientPrivilege, match=RLS_REFUSED), owner.transaction():
        act_as(owner, orgs.a.email)
        owner.execute(
            "INSERT INTO audit_logs (tenant_id, organization_id, action) VALUES (%s, %s, %s)",
            (orgs.b.tenant, orgs.a.org, "project.create"),
        )
    assert scalar(owner, "SELECT count(*) FROM audit_logs") == before


# ---------------------------------------------------------------------------------------------
# Rule versions
# ---------------------------------------------------------------------------------------------


def _versions(conn: Conn, rule: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT version, snapshot->>'name', (snapshot->>'version')::int, change_reason,"
        " changed_by FROM rule_versions WHERE rule_id = %s ORDER BY version",
        (rule,),
    ).fetchall()


def _rule_version(conn: Conn, rule: int) -> int:
    return int(scalar(conn, "SELECT version FROM business_rules WHERE id = %s", (rule,)))


def test_inserting_a_rule_records_version_1(conn: Conn, world: World) -> None:
    with conn.transaction():
        user = act_as(conn, world.a.email)
        rule = scalar(
            conn,
            "INSERT INTO business_rules (description, source_file, source_start_line,"
            " source_end_line, source_code, logic, organization_id, project_id, name, category,"
            " confidence)"
            " VALUES ('', 'src/X.cbl', 1, 1, '', '', %s, %s, 'late fee', 'calculation', 0.8)"
            " RETURNING id",
            (world.a.org, world.a.project),
        )
    assert _rule_version(conn, rule) == 1
    assert _versions(conn, rule) == [(1, "late fee", 1, None, user)]


def test_changing_a_rule_records_the_next_version_with_reason_and_author(
    conn: Conn, world: World
) -> None:
    rule = world.a.rule
    with conn.transaction():
        user = act_as(conn, world.a.email)
        conn.execute("SELECT set_config('app.change_reason', 'why', true)")
        updated = conn.execute(
            "UPDATE business_rules SET name = 'renamed', confidence = 0.9 WHERE id = %s", (rule,)
        ).rowcount
    assert updated == 1
    assert _rule_version(conn, rule) == 2
    assert _versions(conn, rule) == [(1, "rule-a", 1, None, None), (2, "renamed", 2, "why", user)]
    snapshot = scalar(
        conn, "SELECT snapshot FROM rule_versions WHERE rule_id = %s AND version = 2", (rule,)
    )
    assert Decimal(str(snapshot["confidence"])) == Decimal("0.9")


def test_an_update_that_changes_nothing_records_no_version(conn: Conn, world: World) -> None:
    rule = world.a.rule
    with conn.transaction():
        act_as(conn, world.a.email)
        conn.execute("UPDATE business_rules SET name = name WHERE id = %s", (rule,))
        conn.execute("UPDATE business_rules SET version = 42 WHERE id = %s", (rule,))  # by hand
    assert _rule_version(conn, rule) == 1
    assert [v[0] for v in _versions(conn, rule)] == [1]


def test_a_multi_row_insert_and_update_version_every_rule_once(conn: Conn, world: World) -> None:
    with conn.transaction():
        user = act_as(conn, world.a.email)
        conn.execute("SELECT set_config('app.change_reason', 'bulk', true)")
        inserted = conn.execute(
            "INSERT INTO business_rules (description, source_file, source_start_line,"
            " source_end_line, source_code, logic, organization_id, project_id, name, category,"
            " confidence)"
            " SELECT '', 'src/X.cbl', 1, 1, '', '', %s, %s, 'bulk ' || n, 'calculation', 0.5 FROM"
            " generate_series(1, 3) AS n",
            (world.a.org, world.a.project),
        ).rowcount
        # One statement: two rules really change, the third is set to what it already is.
        updated = conn.execute(
            "UPDATE business_rules SET confidence = CASE name WHEN 'bulk 3' THEN 0.5 ELSE 0.7 END"
            " WHERE name LIKE 'bulk %'"
        ).rowcount
    assert (inserted, updated) == (3, 3)
    assert rows(
        conn,
        "SELECT r.name, r.version, v.version, (v.snapshot->>'confidence')::numeric,"
        "       v.change_reason, v.changed_by"
        " FROM business_rules r JOIN rule_versions v ON v.rule_id = r.id"
        " WHERE starts_with(r.name, 'bulk ') ORDER BY r.name, v.version",
    ) == [
        ("bulk 1", 2, 1, Decimal("0.5"), "bulk", user),
        ("bulk 1", 2, 2, Decimal("0.7"), "bulk", user),
        ("bulk 2", 2, 1, Decimal("0.5"), "bulk", user),
        ("bulk 2", 2, 2, Decimal("0.7"), "bulk", user),
        ("bulk 3", 1, 1, Decimal("0.5"), "bulk", user),
    ]


def test_an_insert_with_a_version_of_its_own_still_starts_at_1(conn: Conn, world: World) -> None:
    rule = scalar(
        conn,
        "INSERT INTO business_rules (description, source_file, source_start_line,"
        " source_end_line, source_code, logic, organization_id, project_id, name, category,"
        " confidence,"
        " version) VALUES ('', 'src/X.cbl', 1, 1, '', '', %s, %s, 'forged', 'decision', 0.5, 7)"
        " RETURNING id",
        (world.a.org, world.a.project),
    )
    assert _rule_version(conn, rule) == 1
    assert [v[:3] for v in _versions(conn, rule)] == [(1, "forged", 1)]


def test_deleting_a_reviewer_keeps_the_rule_and_who_reviewed_it(conn: Conn, world: World) -> None:
    """The reviewer is a person (V0016): deleting their account changes nothing on the rule,
    writes no version, and the person keeps the name and email the review reads."""
    reviewer = scalar(
        conn,
        "INSERT INTO users (email, name, organization_id, role)"
        " VALUES ('rev@a.example', 'Rev', %s, 'reviewer') RETURNING id",
        (world.a.org,),
    )
    conn.execute(
        "UPDATE business_rules SET review_status = 'approved', reviewed_by = %s WHERE id = %s",
        (reviewer, world.a.rule),
    )
    with conn.transaction():
        act_as(conn, world.a.email)
        assert conn.execute("DELETE FROM users WHERE id = %s", (reviewer,)).rowcount == 1
    kept = conn.execute(
        "SELECT r.organization_id, r.review_status::text, r.reviewed_by, r.version,"
        " p.email, p.name, p.removed_at IS NOT NULL"
        " FROM business_rules r JOIN people p ON p.id = r.reviewed_by WHERE r.id = %s",
        (world.a.rule,),
    ).fetchall()
    assert kept == [(world.a.org, "approved", reviewer, 2, "rev@a.example", "Rev", True)]


def test_deleting_a_tenant_deletes_everything_it_owns_but_the_audit_trail(
    conn: Conn, world: World
) -> None:
    # A reviewed rule: the reviewer's deletion (SET NULL) and the rule's deletion (CASCADE)
    # happen in the same statement.
    conn.execute(
        "UPDATE business_rules SET review_status = 'approved', reviewed_by = %s WHERE id = %s",
        (world.a.user, world.a.rule),
    )
    other_before = {table: rows_of(conn, table, world.b) for table in ALL_TABLES}
    conn.execute("DELETE FROM tenants WHERE id = %s", (world.a.tenant,))
    left = {table: len(rows_of(conn, table, world.a)) for table in ALL_TABLES}
    assert left == dict.fromkeys(ALL_TABLES, 0)
    # The audit trail stays, its tenant named, the gone organization and user forgotten; the
    # deletion itself is in it.
    kept = rows(
        conn,
        "SELECT organization_id, user_id, actor_email, action FROM audit_logs WHERE tenant_id = %s",
        world.a.tenant,
    )
    assert {(organization, user) for organization, user, _, _ in kept} == {(None, None)}
    assert world.a.email in {email for _, _, email, _ in kept}
    assert {"organization.delete", "tenant.delete"} <= {action for *_, action in kept}
    assert {table: rows_of(conn, table, world.b) for table in ALL_TABLES} == other_before


# ---------------------------------------------------------------------------------------------
# Constraints: each bad row is refused by the named constraint, and nothing is written
# ---------------------------------------------------------------------------------------------

RULE = (
    "INSERT INTO business_rules (description, source_file, source_start_line, source_end_line,"
    " source_code, logic, organization_id, project_id, name, category, confidence)"
    " VALUES ('', 'src/X.cbl', 1, 1, '', '', %s, %s, 'probe', 'decision', %s)"
)
ROUTE = (
    "INSERT INTO routing_rules (organization_id, project_id, name, path_pattern,"
    " target_service, traffic_percentage) VALUES (%s, %s, 'probe', '/probe', %s, %s)"
)
SOURCE = (
    "INSERT INTO source_files (organization_id, project_id, path, content, language, size_bytes,"
    " sha256) VALUES (%s, %s, %s, '', 'cobol', 0, %s)"
)
USER = "INSERT INTO users (email, name, organization_id) VALUES (%s, 'Probe', %s)"


@pytest.mark.parametrize(
    ("error", "constraint", "table", "statement", "params"),
    [
        pytest.param(
            errors.CheckViolation,
            "business_rules_confidence_check",
            "business_rules",
            RULE,
            lambda o: (o.a.org, o.a.project, Decimal("1.5")),
            id="confidence-1.5",
        ),
        pytest.param(
            errors.CheckViolation,
            "business_rules_confidence_check",
            "business_rules",
            RULE,
            lambda o: (o.a.org, o.a.project, Decimal("-0.1")),
            id="confidence-minus-0.1",
        ),
        pytest.param(
            errors.CheckViolation,
            "routing_rules_traffic_percentage_check",
            "routing_rules",
            ROUTE,
            lambda o: (o.a.org, o.a.project, "svc", 101),
            id="traffic-101",
        ),
        pytest.param(
            errors.CheckViolation,
            "routing_rules_target_service_not_blank",
            "routing_rules",
            ROUTE,
            lambda o: (o.a.org, o.a.project, "  ", 0),
            id="target-blank",
        ),
        pytest.param(
            errors.CheckViolation,
            "routing_rules_target_service_printable",
            "routing_rules",
            ROUTE,
            lambda o: (o.a.org, o.a.project, "svc\x1b[31m", 0),
            id="target-with-an-escape",
        ),
        pytest.param(
            errors.StringDataRightTruncation,
            None,
            "routing_rules",
            ROUTE,
            lambda o: (o.a.org, o.a.project, "s" * 51, 0),
            id="target-over-50",
        ),
        pytest.param(
            errors.UniqueViolation,
            "source_files_organization_id_project_id_path_key",
            "source_files",
            SOURCE,
            lambda o: (o.a.org, o.a.project, "src/MAIN.cbl", SHA),
            id="duplicate-path",
        ),
        pytest.param(
            errors.ForeignKeyViolation,
            "source_files_project_fkey",
            "source_files",
            SOURCE,
            lambda o: (o.b.org, o.a.project, "other.cbl", SHA),
            id="org-differs-from-project",
        ),
        pytest.param(
            errors.CheckViolation,
            "source_files_path_no_dotdot",
            "source_files",
            SOURCE,
            lambda o: (o.a.org, o.a.project, "src/../../etc/passwd", SHA),
            id="path-traversal",
        ),
        pytest.param(
            errors.UniqueViolation,
            "users_email_key",
            "users",
            USER,
            lambda o: (o.a.email.upper(), o.a.org),
            id="email-taken-in-another-case",
        ),
        pytest.param(
            errors.UniqueViolation,
            "users_email_key",
            "users",
            USER,
            lambda o: (o.b.email, o.a.org),
            id="email-taken-in-other-org",
        ),
    ],
)
def test_constraint_refuses_a_bad_row(
    owner: Conn,
    orgs: World,
    error: type[psycopg.Error],
    constraint: str | None,
    table: str,
    statement: str,
    params: Callable[[World], tuple[Any, ...]],
) -> None:
    count = table_sql("SELECT count(*) FROM {}", table)
    before = scalar(owner, count)
    with pytest.raises(error) as refused:
        owner.execute(statement, params(orgs))
    assert refused.value.diag.constraint_name == constraint
    assert scalar(owner, count) == before


# The three sha256 columns share one CHECK (V0018): 64 lower-case hex digits and nothing else.
HASH_CHECKS = {
    "source_files_sha256_format": "sha256",
    "business_rules_source_hash_format": "source_hash",
    "generated_files_sha256_format": "sha256",
}
HASHED = ["0" * 64, "f" * 64, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]
NOT_HASHES = [
    "0" * 63,
    "0" * 65,
    "",
    "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    "g" + "0" * 63,
    "0" * 63 + "\n",
    "0" * 64 + "\n",
    " " + "0" * 63,
    "é" * 32,  # 64 bytes, 32 characters
    "\uff10" * 64,  # fullwidth digits
]


@pytest.mark.parametrize("value", HASHED + NOT_HASHES)
def test_a_hash_is_64_lower_case_hex_digits(owner: Conn, orgs: World, value: str) -> None:
    count = table_sql("SELECT count(*) FROM {}", "source_files")
    before = scalar(owner, count)
    params = (orgs.a.org, orgs.a.project, f"probe-{len(value)}.cbl", value)
    if value in HASHED:
        with owner.transaction(force_rollback=True):
            owner.execute(SOURCE, params)
            assert scalar(owner, count) == before + 1
    else:
        with pytest.raises(errors.CheckViolation) as refused:
            owner.execute(SOURCE, params)
        assert refused.value.diag.constraint_name == "source_files_sha256_format"
    assert scalar(owner, count) == before


def test_every_hash_column_has_the_same_validated_check(owner: Conn) -> None:
    checks = rows(
        owner,
        "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint"
        " WHERE conname = ANY(%s) ORDER BY conname",
        list(HASH_CHECKS),
    )
    assert sorted(name for name, *_ in checks) == sorted(HASH_CHECKS)
    shapes = {definition.replace(HASH_CHECKS[name], "x") for name, definition, _ in checks}
    assert shapes == {"CHECK (((octet_length(x) = 64) AND (x !~ '[^0-9a-f]'::text)))"}
    assert all(validated for *_, validated in checks)


@pytest.mark.parametrize("table", MUTABLE_TABLES)
def test_updated_at_is_set_on_every_update(owner: Conn, orgs: World, table: str) -> None:
    column, value = owner_key(table, orgs.a)
    first = sql.SQL("(SELECT id FROM {} WHERE {} = %s ORDER BY id LIMIT 1)").format(
        sql.Identifier(table), sql.Identifier(column)
    )
    select = sql.SQL("SELECT updated_at FROM {} WHERE id = {}").format(sql.Identifier(table), first)
    # A client-supplied value is overwritten too.
    update = sql.SQL(
        "UPDATE {} SET updated_at = '2000-01-01' WHERE id = {} RETURNING updated_at, now()"
    ).format(sql.Identifier(table), first)
    with owner.transaction(force_rollback=True):
        before = scalar(owner, select, (value,))
        after, now = owner.execute(update, (value,)).fetchone() or (None, None)
    assert after == now
    assert after > before
