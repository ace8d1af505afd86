"""Audit rows, written by every mutating command in the same transaction as the change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    resource_id: object,
    organization_id: int | None = None,
    tenant_id: int | None = None,
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
            "resource_id": str(resource_id),
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
       %(audit_resource_type)s, s.resource_id::text, s.metadata
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
    row's ``resource_id`` (text) and ``metadata``."""
    from psycopg import sql

    query = sql.SQL(_RECORD_MANY).format(subjects=subjects)
    bound = {**params, "audit_action": action, "audit_resource_type": resource_type}
    return conn.execute(query, bound).fetchall()


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)  # dates and decimals as text
