"""Audit rows, written by every mutating command in the same transaction as the change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from psycopg import sql

    from migrationpilot_cli.db.connect import Connection

# The actor comes from the database itself: the acting user (NULL in operator mode, where the
# row's db_role still names the login) and the tenant from the organization when not given.
_RECORD = """
INSERT INTO audit_logs
    (tenant_id, organization_id, user_id, actor_email, action, resource_type, resource_id,
     metadata)
SELECT coalesce(%(tenant_id)s, o.tenant_id), %(organization_id)s, u.id, u.email, %(action)s,
       %(resource_type)s, %(resource_id)s, %(metadata)s
FROM (SELECT current_user_id() AS id) AS acting
LEFT JOIN users u ON u.id = acting.id
LEFT JOIN organizations o ON o.id = %(organization_id)s
"""


def record(
    conn: Connection,
    action: str,
    *,
    resource_type: str,
    resource_id: UUID,
    organization_id: UUID | None = None,
    tenant_id: UUID | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    from psycopg.types.json import Jsonb

    conn.execute(
        _RECORD,
        {
            "tenant_id": tenant_id,
            "organization_id": organization_id,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "metadata": Jsonb(metadata or {}, dumps=_dumps),
        },
    )


# The set-based form for bulk commands: one row per subject, in the same statement. A LEFT JOIN
# on organizations, so that a subject whose organization is out of sight fails loudly
# (tenant_id NOT NULL) instead of silently losing its audit row; the actor is looked up once
# (the sub-select is an InitPlan), not once per row.
_RECORD_MANY = """
WITH subjects AS ({subjects})
INSERT INTO audit_logs
    (tenant_id, organization_id, user_id, actor_email, action, resource_type, resource_id,
     metadata)
SELECT o.tenant_id, s.organization_id, u.id, u.email, %(audit_action)s,
       %(audit_resource_type)s, s.resource_id, s.metadata
FROM subjects s
LEFT JOIN organizations o ON o.id = s.organization_id
LEFT JOIN users u ON u.id = (SELECT current_user_id())
RETURNING resource_id, metadata
"""


def record_many(
    conn: Connection,
    action: str,
    *,
    resource_type: str,
    subjects: sql.Composable,
    params: dict[str, Any],
) -> list[dict[str, Any]]:
    """One audit row per row of ``subjects``, a query yielding ``organization_id``,
    ``resource_id`` and ``metadata`` (jsonb), run with ``params``.

    ``subjects`` becomes a WITH query, so it may be the change itself (``UPDATE ...
    RETURNING``): the change and its audit rows are then one statement. Returns each audit
    row's ``resource_id`` and ``metadata``."""
    from psycopg import sql

    query = sql.SQL(_RECORD_MANY).format(subjects=subjects)
    bound = {**params, "audit_action": action, "audit_resource_type": resource_type}
    return conn.execute(query, bound).fetchall()


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)  # dates and decimals as text


# ---------------------------------------------------------------------------------------------
# Reading and retention
# ---------------------------------------------------------------------------------------------
COLUMNS = (
    "id",
    "created_at",
    "actor",
    "action",
    "resource_type",
    "resource_id",
    "organization",
    "tenant",
    "metadata",
)
# A table is for scanning; the metadata (old and new values) is in json, jsonl, csv and tsv.
TABLE_COLUMNS = ("id", "created_at", "actor", "action", "resource_type", "resource_id",
                 "organization")  # fmt: skip

# Newest first. Every filter is optional (NULL: not applied); the actor is the user's email,
# or the database login for operator-mode changes. Under row-level security only the acting
# user's organization's rows are visible; tenant-level rows (no organization) never are.
_LIST = """
SELECT a.id, a.created_at, coalesce(a.actor_email, a.db_role) AS actor, a.action,
       a.resource_type, a.resource_id, o.slug AS organization, t.slug AS tenant, a.metadata
FROM audit_logs a
LEFT JOIN organizations o ON o.id = a.organization_id
LEFT JOIN tenants t ON t.id = a.tenant_id
WHERE a.created_at >= coalesce(%(since)s::timestamptz, now() - %(ago)s::interval, '-infinity')
  AND (%(action)s::text IS NULL OR a.action = %(action)s)
  AND (%(prefix)s::text IS NULL OR starts_with(a.action, %(prefix)s))
  AND (%(user)s::text IS NULL OR lower(a.actor_email) = lower(%(user)s))
  AND (%(resource_type)s::text IS NULL OR a.resource_type = %(resource_type)s)
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
