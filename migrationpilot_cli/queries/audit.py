"""The audit log: read it, and purge what each tenant's retention lets go.

The rows are written by the database itself (V0012): triggers on every table of business
data record each change, whoever the client, with what the CLI passes through
``app.client`` and ``app.change_reason``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection

# ---------------------------------------------------------------------------------------------
# Reading and retention
# ---------------------------------------------------------------------------------------------
COLUMNS = (
    "id",
    "created_at",
    "actor",
    "actor_name",
    "client",
    "action",
    "resource_type",
    "resource_id",
    "organization",
    "tenant",
    "metadata",
)
# A table is for scanning; the metadata (old and new values) is in json, jsonl, csv and tsv.
TABLE_COLUMNS = ("id", "created_at", "actor", "actor_name", "client", "action", "resource_type",
                 "resource_id")  # fmt: skip

# Newest first. Every filter is optional (NULL: not applied); the actor is the user's email,
# or the database login for operator-mode changes, with the name the person has (or had, once
# the account is removed: people, V0016); the client is the command that made the
# change, or 'sql' for any other client. A resource is a whole id or the range of ids a
# short one stands for (refs.bounds), matched against the row's resource or, for a row that
# stands for a whole statement, its ids. Under row-level security only the acting user's
# organization's rows are visible; tenant-level rows (no organization) never are.
_LIST = """
SELECT a.id, a.created_at, coalesce(a.actor_email, a.db_role) AS actor, person.name AS actor_name,
       coalesce(a.metadata ->> 'client', 'sql') AS client, a.action,
       a.resource_type, a.resource_id, o.slug AS organization, t.slug AS tenant, a.metadata
FROM audit_logs a
LEFT JOIN people person ON person.id = a.user_id
LEFT JOIN organizations o ON o.id = a.organization_id
LEFT JOIN tenants t ON t.id = a.tenant_id
WHERE a.created_at >= coalesce(%(since)s::timestamptz, now() - %(ago)s::interval, '-infinity')
  AND (%(action)s::text IS NULL OR a.action = %(action)s)
  AND (%(prefix)s::text IS NULL OR starts_with(a.action, %(prefix)s))
  AND (%(user)s::text IS NULL OR lower(a.actor_email) = lower(%(user)s))
  AND (%(resource_type)s::text IS NULL OR a.resource_type = %(resource_type)s)
  AND (%(resource_low)s::uuid IS NULL
       OR a.resource_id BETWEEN %(resource_low)s AND %(resource_high)s
       OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(a.metadata -> 'ids') AS i (id)
                  WHERE i.id::uuid BETWEEN %(resource_low)s AND %(resource_high)s))
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s
"""


def list_recent(conn: Connection, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """Audit rows matching ``filters`` (keys of the query above; None: any)."""
    return conn.execute(_LIST, filters).fetchall()


# Per tenant: what its retention (data_retention_days) lets go. Audit rows older than it, and
# the versions of rules deleted longer ago than it: a deleted rule's last version records its
# deletion (V0014), and all of its versions go together. A living rule's versions never go.
# Rows of deleted tenants have no retention and are kept (their organizations' versions went
# with the organizations).
#
# The deleted rules are found from rule_versions' key (rule_id, organization_id, version) and
# business_rules' primary key, both read index-only (there is no list of deleted rules to
# start from, and the versions' heap, their snapshots, is the largest table there is); then each
# deleted rule's last version, one probe each, says when it was deleted.
_EXPIRED_HISTORY = """
SELECT d.rule_id, d.organization_id, o.tenant_id, d.versions
FROM (
    SELECT v.rule_id, v.organization_id, count(*) AS versions, max(v.version) AS last
    FROM rule_versions v
    WHERE NOT EXISTS (SELECT 1 FROM business_rules r WHERE r.id = v.rule_id)
    GROUP BY v.rule_id, v.organization_id
) AS d
JOIN rule_versions deletion
  ON deletion.rule_id = d.rule_id AND deletion.organization_id = d.organization_id
 AND deletion.version = d.last
JOIN organizations o ON o.id = d.organization_id
JOIN tenants t ON t.id = o.tenant_id
WHERE deletion.created_at < now() - make_interval(days => t.data_retention_days)
"""
# The dry run counts the same: the versions are found once for every tenant (grouped, then
# joined), and each tenant's audit rows by one probe of its (tenant_id, created_at) index.
_WOULD_PURGE = """
WITH expired_history AS ({expired_history}
), versions AS (
    SELECT tenant_id, sum(versions)::bigint AS n FROM expired_history GROUP BY tenant_id
)
SELECT t.slug AS tenant, t.data_retention_days AS retention_days,
       (SELECT count(*) FROM audit_logs a
        WHERE a.tenant_id = t.id
          AND a.created_at < now() - make_interval(days => t.data_retention_days))
           AS would_purge,
       coalesce(v.n, 0) AS would_purge_versions
FROM tenants t
LEFT JOIN versions v ON v.tenant_id = t.id
ORDER BY t.slug
"""
# One statement: delete, count per tenant, and file one `audit.purge` row per tenant that lost
# audit rows or versions (that row is new, so this purge never deletes it).
_PURGE = """
WITH purged AS (
    DELETE FROM audit_logs a USING tenants t
    WHERE a.tenant_id = t.id
      AND a.created_at < now() - make_interval(days => t.data_retention_days)
    RETURNING a.tenant_id
), expired_history AS ({expired_history}
), versions_purged AS (
    DELETE FROM rule_versions v USING expired_history e
    WHERE v.rule_id = e.rule_id AND v.organization_id = e.organization_id
    RETURNING e.tenant_id
), counts AS (
    SELECT t.id AS tenant_id, t.slug AS tenant, t.data_retention_days AS retention_days,
           coalesce(p.n, 0) AS purged, coalesce(vp.n, 0) AS versions_purged
    FROM tenants t
    LEFT JOIN (SELECT tenant_id, count(*) AS n FROM purged GROUP BY tenant_id) p
      ON p.tenant_id = t.id
    LEFT JOIN (SELECT tenant_id, count(*) AS n FROM versions_purged GROUP BY tenant_id) vp
      ON vp.tenant_id = t.id
), recorded AS (
    INSERT INTO audit_logs (tenant_id, action, resource_type, resource_id, metadata)
    SELECT tenant_id, 'audit.purge', 'tenant', tenant_id,
           jsonb_build_object('purged', purged, 'versions_purged', versions_purged,
                              'retention_days', retention_days,
                              'older_than', now() - make_interval(days => retention_days))
    FROM counts
    WHERE purged > 0 OR versions_purged > 0
    ORDER BY counts.tenant_id
)
SELECT tenant, retention_days, purged, versions_purged FROM counts ORDER BY tenant
"""


def purge(conn: Connection, *, dry_run: bool) -> list[dict[str, Any]]:
    """Delete (or, with ``dry_run``, count) each tenant's audit rows and deleted rules' versions
    older than its retention. Owner only: the app role may delete neither."""
    from psycopg import sql

    query = sql.SQL(_WOULD_PURGE if dry_run else _PURGE)
    return conn.execute(query.format(expired_history=sql.SQL(_EXPIRED_HISTORY))).fetchall()
