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
    "client",
    "action",
    "resource_type",
    "resource_id",
    "organization",
    "tenant",
    "metadata",
)
# A table is for scanning; the metadata (old and new values) is in json, jsonl, csv and tsv.
TABLE_COLUMNS = ("id", "created_at", "actor", "client", "action", "resource_type",
                 "resource_id")  # fmt: skip

# Newest first. Every filter is optional (NULL: not applied); the actor is the user's email,
# or the database login for operator-mode changes; the client is the command that made the
# change, or 'sql' for any other client. A resource is a whole id or the range of ids a
# short one stands for (refs.bounds), matched against the row's resource or, for a row that
# stands for a whole statement, its ids. Under row-level security only the acting user's
# organization's rows are visible; tenant-level rows (no organization) never are.
_LIST = """
SELECT a.id, a.created_at, coalesce(a.actor_email, a.db_role) AS actor,
       coalesce(a.metadata ->> 'client', 'sql') AS client, a.action,
       a.resource_type, a.resource_id, o.slug AS organization, t.slug AS tenant, a.metadata
FROM audit_logs a
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


# Per tenant: what its retention (data_retention_days) lets go. The purge is one statement:
# delete, count per tenant, and file one `audit.purge` row per tenant that lost rows (that
# row is new, so this purge never deletes it). Rows of deleted tenants have no retention
# and are kept.
_WOULD_PURGE = """
SELECT t.slug AS tenant, t.data_retention_days AS retention_days, count(a.id) AS would_purge
FROM tenants t
LEFT JOIN audit_logs a
  ON a.tenant_id = t.id AND a.created_at < now() - make_interval(days => t.data_retention_days)
GROUP BY t.id
ORDER BY t.slug
"""
_PURGE = """
WITH purged AS (
    DELETE FROM audit_logs a USING tenants t
    WHERE a.tenant_id = t.id
      AND a.created_at < now() - make_interval(days => t.data_retention_days)
    RETURNING a.tenant_id
), counts AS (
    SELECT t.id AS tenant_id, t.slug AS tenant, t.data_retention_days AS retention_days,
           coalesce(p.n, 0) AS purged
    FROM tenants t
    LEFT JOIN (SELECT tenant_id, count(*) AS n FROM purged GROUP BY tenant_id) p
      ON p.tenant_id = t.id
), recorded AS (
    INSERT INTO audit_logs (tenant_id, action, resource_type, resource_id, metadata)
    SELECT tenant_id, 'audit.purge', 'tenant', tenant_id,
           jsonb_build_object('purged', purged, 'retention_days', retention_days,
                              'older_than', now() - make_interval(days => retention_days))
    FROM counts
    WHERE purged > 0
    ORDER BY counts.tenant_id
)
SELECT tenant, retention_days, purged FROM counts ORDER BY tenant
"""


def purge(conn: Connection, *, dry_run: bool) -> list[dict[str, Any]]:
    """Delete (or, with ``dry_run``, count) each tenant's audit rows older than its retention.
    Owner only: the app role has no DELETE on audit_logs."""
    return conn.execute(_WOULD_PURGE if dry_run else _PURGE).fetchall()
