"""`db verify`, second half: compare the live schema with what the migrations make.

The migrations already applied to the live database are applied again to a scratch database
on the same server (``CREATE DATABASE ... TEMPLATE template0``, always dropped afterwards);
then a catalog fingerprint of schema ``public`` is read from both, one set-based query per
kind of object, and every difference is named, one per line:

    column business_rules.note: in the database, not made by the migrations
    index idx_audit_created: missing
    function current_user_id(): body differs

What the fingerprint covers: relations (kind, persistence, row-level security enabled and
forced, view text), columns (type with typmod, NOT NULL, default, identity, generated,
collation), constraints, indexes (other than those of primary-key, unique and exclusion
constraints, which are covered as constraints), functions (result, language, md5 of the body,
SECURITY DEFINER, SET options, volatility, parallel safety, strictness), non-internal
triggers, rewrite rules (other than a view's ``_RETURN``, which is its view text), policies,
enum labels in order and domains, and the privileges on the schema, its tables, sequences,
views, columns and functions granted to every grantee but the object's owner. Rows are never
read: the history table counts by its definition only. Owners and grantors are left out of
the comparison, since the scratch database belongs to whoever runs ``db verify``.

Four checks read the live database alone (the scratch database could not tell): every
table, view, sequence, function and type is owned by the owner of the history table; no
index is INVALID; no SECURITY DEFINER function is executable by PUBLIC; and
``migrationpilot_app`` has neither SUPERUSER nor BYPASSRLS and is a member of no role
(either would let the application past row-level security or its grants):

    function current_organization_id(): owned by probe, not by migrationpilot_owner
    index loans_one_per_id: INVALID (a CONCURRENTLY build that failed); rerun db ...
    function current_tenant_id(): SECURITY DEFINER and executable by PUBLIC
    role migrationpilot_app: member of pg_write_all_data
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from migrationpilot_cli.db import migrations
from migrationpilot_cli.errors import OperationFailed

if TYPE_CHECKING:
    import psycopg

SCRATCH_PREFIX = "migrationpilot_verify_"
SCHEMA = "public"
APP_ROLE = "migrationpilot_app"


class ScratchRefused(Exception):
    """The connecting role may not create a database (no CREATEDB)."""

    def __init__(self, role: str) -> None:
        super().__init__(role)
        self.role = role


@dataclass(frozen=True)
class Kind:
    """One kind of object: a query returning ``(label, relation, *attributes)`` rows, where
    ``relation`` is the table the object belongs to (NULL for none) and ``attributes`` are
    named, in order, by ``attributes``.

    A ``live_only`` kind is a check of the live database, not run on the scratch one: each
    row it returns is one problem, its label the whole line, with no attributes."""

    attributes: tuple[str, ...]
    query: str
    live_only: bool = False


# The queries take the schema name as %(schema)s; the live-only checks also take the
# history table's name, %(history)s, and the application role's, %(role)s.
KINDS: dict[str, Kind] = {
    "relations": Kind(
        ("kind", "persistence", "row-level security", "forced row-level security", "definition"),
        """
        SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view '
                              WHEN 'S' THEN 'sequence ' WHEN 'f' THEN 'foreign table '
                              ELSE 'table ' END || c.relname,
               c.relname, c.relkind::text, c.relpersistence::text,
               c.relrowsecurity, c.relforcerowsecurity,
               CASE WHEN c.relkind IN ('v', 'm') THEN md5(pg_get_viewdef(c.oid)) END
          FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        """,
    ),
    "columns": Kind(
        ("type", "nullability", "default", "identity", "generated", "collation"),
        """
        SELECT 'column ' || c.relname || '.' || a.attname, c.relname,
               format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
               co.collname::text
          FROM pg_attribute AS a
          JOIN pg_class AS c ON c.oid = a.attrelid
          JOIN pg_namespace AS n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          LEFT JOIN pg_collation AS co ON co.oid = a.attcollation
         WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND a.attnum > 0 AND NOT a.attisdropped
        """,
    ),
    "constraints": Kind(
        ("definition",),
        # NOT NULL (contype 'n' on PostgreSQL 18) is a column's nullability, above.
        """
        SELECT 'constraint ' || k.conname || ' on ' || coalesce(c.relname, 'domain ' || t.typname),
               c.relname, pg_get_constraintdef(k.oid)
          FROM pg_constraint AS k
          JOIN pg_namespace AS n ON n.oid = k.connamespace
          LEFT JOIN pg_class AS c ON c.oid = k.conrelid
          LEFT JOIN pg_type AS t ON t.oid = k.contypid
         WHERE n.nspname = %(schema)s AND k.contype <> 'n'
        """,
    ),
    "indexes": Kind(
        ("definition", "validity"),
        # pg_get_indexdef names the schema, never the database.
        """
        SELECT 'index ' || ic.relname, c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
          FROM pg_index AS i
          JOIN pg_class AS ic ON ic.oid = i.indexrelid
          JOIN pg_class AS c ON c.oid = i.indrelid
          JOIN pg_namespace AS n ON n.oid = ic.relnamespace
         WHERE n.nspname = %(schema)s
           AND NOT EXISTS (SELECT FROM pg_constraint AS k
                            WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
        """,
    ),
    "functions": Kind(
        (
            "result",
            "language",
            "body",
            "security definer",
            "settings",
            "volatility",
            "parallel safety",
            "strictness",
        ),
        """
        SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate '
                              ELSE 'function ' END
                   || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               NULL, pg_get_function_result(p.oid), l.lanname::text, md5(p.prosrc),
               p.prosecdef, p.proconfig, p.provolatile::text, p.proparallel::text,
               p.proisstrict
          FROM pg_proc AS p
          JOIN pg_namespace AS n ON n.oid = p.pronamespace
          JOIN pg_language AS l ON l.oid = p.prolang
         WHERE n.nspname = %(schema)s
        """,
    ),
    "triggers": Kind(
        ("definition", "enabled state"),
        """
        SELECT 'trigger ' || t.tgname || ' on ' || c.relname, c.relname,
               pg_get_triggerdef(t.oid), t.tgenabled::text
          FROM pg_trigger AS t
          JOIN pg_class AS c ON c.oid = t.tgrelid
          JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE n.nspname = %(schema)s AND NOT t.tgisinternal
        """,
    ),
    "rules": Kind(
        ("definition", "enabled state"),
        # A view's _RETURN rule is its definition, compared with the relations.
        """
        SELECT 'rule ' || r.rulename || ' on ' || c.relname, c.relname,
               pg_get_ruledef(r.oid), r.ev_enabled::text
          FROM pg_rewrite AS r
          JOIN pg_class AS c ON c.oid = r.ev_class
          JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE n.nspname = %(schema)s AND r.rulename <> '_RETURN'
        """,
    ),
    "policies": Kind(
        ("permissiveness", "command", "roles", "USING expression", "WITH CHECK expression"),
        """
        SELECT 'policy ' || policyname || ' on ' || tablename, tablename::text,
               permissive, cmd, roles::text[], qual, with_check
          FROM pg_policies
         WHERE schemaname = %(schema)s
        """,
    ),
    "types": Kind(
        ("kind", "labels", "base type", "nullability", "default"),
        """
        SELECT CASE t.typtype WHEN 'e' THEN 'enum ' ELSE 'domain ' END || t.typname, NULL,
               t.typtype::text,
               ARRAY(SELECT e.enumlabel::text FROM pg_enum AS e
                      WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
               CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
               t.typnotnull, t.typdefault
          FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
         WHERE n.nspname = %(schema)s AND t.typtype IN ('e', 'd')
        """,
    ),
    "privileges": Kind(
        ("grant option",),
        # Every grantee but the object's owner: the owner (and so every grantor) is whoever
        # ran the migrations, which differs between the two databases.
        # A function's NULL ACL means the default: EXECUTE for PUBLIC.
        """
        SELECT 'grant ' || (o.acl).privilege_type || ' on ' || o.kind || ' ' || o.name
                   || ' to ' || CASE (o.acl).grantee WHEN 0 THEN 'PUBLIC'
                                ELSE (o.acl).grantee::regrole::text END,
               o.relation, (o.acl).is_grantable
          FROM (SELECT 'schema' AS kind, n.nspname::text AS name, NULL AS relation,
                       n.nspowner AS owner,
                       aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS acl
                  FROM pg_namespace AS n
                 WHERE n.nspname = %(schema)s
                UNION ALL
                SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'
                                      ELSE 'table' END,
                       c.relname, c.relname, c.relowner, aclexplode(c.relacl)
                  FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                 WHERE n.nspname = %(schema)s AND c.relacl IS NOT NULL
                UNION ALL
                SELECT 'column', c.relname || '.' || a.attname, c.relname, c.relowner,
                       aclexplode(a.attacl)
                  FROM pg_attribute AS a
                  JOIN pg_class AS c ON c.oid = a.attrelid
                  JOIN pg_namespace AS n ON n.oid = c.relnamespace
                 WHERE n.nspname = %(schema)s AND a.attacl IS NOT NULL AND NOT a.attisdropped
                UNION ALL
                SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid)
                                   || ')', NULL, p.proowner,
                       aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))
                  FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
                 WHERE n.nspname = %(schema)s) AS o
         WHERE (o.acl).grantee <> o.owner
        """,
    ),
    "owners": Kind(
        (),
        # Labelled as above. Indexes, and a table's row type, always share its owner.
        # Checked on the live database only: in the scratch one, whoever runs db verify
        # owns everything, history table included.
        """
        SELECT o.label || ': owned by ' || o.owner::regrole::text
                   || ', not by ' || h.relowner::regrole::text,
               o.relation
          FROM (SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view '
                                      WHEN 'S' THEN 'sequence ' WHEN 'f' THEN 'foreign table '
                                      ELSE 'table ' END || c.relname AS label,
                       c.relname::text AS relation, c.relowner AS owner
                  FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                 WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                UNION ALL
                SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate '
                                      ELSE 'function ' END
                           || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                       NULL, p.proowner
                  FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
                 WHERE n.nspname = %(schema)s
                UNION ALL
                SELECT CASE t.typtype WHEN 'e' THEN 'enum ' WHEN 'd' THEN 'domain '
                                      WHEN 'r' THEN 'range type ' ELSE 'type ' END || t.typname,
                       NULL, t.typowner
                  FROM pg_type AS t
                  JOIN pg_namespace AS n ON n.oid = t.typnamespace
                  LEFT JOIN pg_class AS c ON c.oid = t.typrelid
                 WHERE n.nspname = %(schema)s AND t.typtype IN ('c', 'd', 'e', 'r')
                   AND (t.typrelid = 0 OR c.relkind = 'c')) AS o
          JOIN pg_class AS h
            ON h.oid = to_regclass(format('%%I.%%I', %(schema)s::text, %(history)s::text))
         WHERE o.owner <> h.relowner
        """,
        live_only=True,
    ),
    "invalid indexes": Kind(
        (),
        # A CREATE INDEX CONCURRENTLY that failed leaves its index INVALID: never used by a
        # query, yet enforcing its uniqueness and slowing every write. db migrate rebuilds it.
        """
        SELECT 'index ' || c.relname || ': INVALID (a CONCURRENTLY build that failed);'
                   || ' rerun db migrate to rebuild it',
               t.relname::text
          FROM pg_index AS i
          JOIN pg_class AS c ON c.oid = i.indexrelid
          JOIN pg_class AS t ON t.oid = i.indrelid
          JOIN pg_namespace AS n ON n.oid = c.relnamespace
         WHERE n.nspname = %(schema)s AND NOT i.indisvalid
        """,
        live_only=True,
    ),
    "open definer functions": Kind(
        (),
        # A SECURITY DEFINER function runs with its owner's rights: executable by PUBLIC, it
        # lets any role that can connect do what the owner may (V0011).
        """
        SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid)
                   || '): SECURITY DEFINER and executable by PUBLIC',
               NULL
          FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
         WHERE n.nspname = %(schema)s AND p.prosecdef
           AND EXISTS (SELECT 1
                         FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
                        WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
        """,
        live_only=True,
    ),
    "role": Kind(
        (),
        # Any membership may carry privileges (or SET ROLE) past the grants compared above.
        """
        SELECT 'role ' || r.rolname || ': ' || p.problem, NULL
          FROM pg_roles AS r
         CROSS JOIN LATERAL (SELECT 'has SUPERUSER' WHERE r.rolsuper
                             UNION ALL
                             SELECT 'has BYPASSRLS' WHERE r.rolbypassrls
                             UNION ALL
                             SELECT 'member of ' || m.roleid::regrole::text
                               FROM pg_auth_members AS m
                              WHERE m.member = r.oid) AS p (problem)
         WHERE r.rolname = %(role)s
        """,
        live_only=True,
    ),
}

# label -> (the relation it belongs to, its attributes); one such map per kind.
Fingerprint = dict[str, dict[str, tuple[str | None, tuple[Any, ...]]]]


def fingerprint(
    conn: psycopg.Connection[Any], schema: str = SCHEMA, *, live: bool = True
) -> Fingerprint:
    """The catalog fingerprint of ``schema``: one query per kind, in one read-only snapshot,
    with the settings that shape catalog text (search_path, TimeZone) pinned. The live-only
    checks run when ``live``."""
    from psycopg.rows import tuple_row

    result: Fingerprint = {}
    params = {"schema": schema, "history": migrations.HISTORY_TABLE, "role": APP_ROLE}
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute(
            "SELECT set_config('search_path', quote_ident(%s), true),"
            " set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, MDY', true)",
            (schema,),
        )
        for name, kind in KINDS.items():
            if kind.live_only and not live:
                continue
            rows = cursor.execute(kind.query, params).fetchall()
            result[name] = {row[0]: (row[1], tuple(row[2:])) for row in rows}
    return result


def differences(live: Fingerprint, made: Fingerprint) -> list[str]:
    """One line per difference, then one per problem the live-only checks found, in a stable
    order. An object of a table that exists on one side only is not named again: the table's
    own line says it."""
    live_tables = {relation for relation, _ in live["relations"].values()}
    made_tables = {relation for relation, _ in made["relations"].values()}
    lines = []
    for name, kind in KINDS.items():
        if kind.live_only:
            lines.extend(sorted(live[name]))
            continue
        ours, theirs = live[name], made[name]
        for label in sorted(ours.keys() | theirs.keys()):
            if label not in theirs:
                relation = ours[label][0]
                if name == "relations" or relation is None or relation in made_tables:
                    lines.append(f"{label}: in the database, not made by the migrations")
            elif label not in ours:
                relation = theirs[label][0]
                if name == "relations" or relation is None or relation in live_tables:
                    lines.append(f"{label}: missing")
            else:
                changed = [
                    attribute
                    for attribute, a, b in zip(
                        kind.attributes, ours[label][1], theirs[label][1], strict=True
                    )
                    if a != b
                ]
                if changed:
                    lines.append(f"{label}: {_differ(changed)}")
    return lines


def _differ(attributes: Sequence[str]) -> str:
    if len(attributes) == 1:
        return f"{attributes[0]} {'differ' if attributes[0].endswith('s') else 'differs'}"
    return f"{', '.join(attributes[:-1])} and {attributes[-1]} differ"


@contextmanager
def scratch_database(
    conn: psycopg.Connection[Any], on_leftover: Callable[[str, str], None]
) -> Iterator[str]:
    """A new, empty database on the server of ``conn`` (autocommit); yields a connection
    string to it. It is dropped when the block ends, however it ends (an error, Ctrl-C);
    when even that fails, ``on_leftover(name, reason)`` is told which one is left."""
    import psycopg
    from psycopg.rows import tuple_row

    name = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:16]}"
    try:
        try:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        except psycopg.errors.InsufficientPrivilege as error:
            with conn.cursor(row_factory=tuple_row) as cursor:
                row = cursor.execute("SELECT current_user::text").fetchone()
            raise ScratchRefused(row[0] if row else "this role") from error
        except psycopg.Error as error:
            reason = error.diag.message_primary or str(error).strip()
            raise OperationFailed(
                f"cannot compare the live schema: creating a scratch database failed: {reason}"
            ) from error
        yield psycopg.conninfo.make_conninfo(
            conn.info.dsn, dbname=name, password=conn.info.password or None
        )
    finally:
        _drop(conn, name, on_leftover)


def _drop(
    conn: psycopg.Connection[Any], name: str, on_leftover: Callable[[str, str], None]
) -> None:
    import psycopg

    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    try:
        if conn.closed or conn.broken:
            with psycopg.connect(
                conn.info.dsn, password=conn.info.password or None, autocommit=True
            ) as again:
                again.execute(statement)
        else:
            conn.execute(statement)
    except BaseException as error:  # Ctrl-C again included: say what is left, then go on
        on_leftover(name, str(error).strip() or type(error).__name__)
        if not isinstance(error, Exception):
            raise


def compare(
    conn: psycopg.Connection[Any],
    files: Sequence[migrations.MigrationFile],
    on_leftover: Callable[[str, str], None],
) -> list[str]:
    """Every difference between the live schema of ``conn`` (autocommit) and what ``files``
    make in a scratch database. Raises ScratchRefused when the role may not create one."""
    import psycopg

    with scratch_database(conn, on_leftover) as conninfo:
        try:
            scratch = psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as error:
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else ""
            raise OperationFailed(
                f"cannot compare the live schema: cannot connect to the scratch database: {reason}"
            ) from error
        with scratch:
            try:
                migrations.migrate(
                    scratch, files, target=None, lock_timeout="1min", on_applied=lambda *_: None
                )
            except OperationFailed as error:
                raise OperationFailed(
                    f"cannot compare the live schema: the migrations fail on a new database:"
                    f" {error.message}"
                ) from error
            made = fingerprint(scratch, live=False)
        live = fingerprint(conn)
    return differences(live, made)
