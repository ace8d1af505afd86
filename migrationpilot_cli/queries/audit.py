"""Audit rows, written by every mutating command in the same transaction as the change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)  # dates and decimals as text
