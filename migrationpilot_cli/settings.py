"""Everything a command needs to know about how it was invoked, resolved once.

The root callback builds one ``Settings`` and puts it on ``ctx.obj``; commands read it and
never look at the environment themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from migrationpilot_cli.errors import BadInput

# libpq reads these itself; when any is set we let libpq resolve the connection.
LIBPQ_ENVIRONMENT = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    """Explicit connection string (URL or key=value), or None for libpq env / embedded."""
    database_url_source: str
    """Where ``database_url`` came from, for messages: flag, env var name, libpq, embedded."""
    acting_user: str | None
    debug: bool = False

    @cached_property
    def home(self) -> Path:
        """Where the embedded server keeps its data: ``MIGRATIONPILOT_HOME`` or the platform's
        user data directory. Resolved on first use so that ``--help`` stays fast."""
        configured = os.environ.get("MIGRATIONPILOT_HOME")
        if configured:
            return Path(configured).expanduser().resolve()
        import platformdirs

        return Path(platformdirs.user_data_dir("migrationpilot", appauthor=False))

    @property
    def uses_embedded_server(self) -> bool:
        return self.database_url is None and self.database_url_source == "embedded"


def resolve_database_url(flag_value: str | None) -> tuple[str | None, str]:
    """Apply the precedence of DESIGN.md: flag > MIGRATIONPILOT_DATABASE_URL > DATABASE_URL >
    libpq environment > the embedded server."""
    if flag_value:
        return flag_value, "--database-url"
    for variable in ("MIGRATIONPILOT_DATABASE_URL", "DATABASE_URL"):
        value = os.environ.get(variable)
        if value:
            return value, variable
    if any(os.environ.get(variable) for variable in LIBPQ_ENVIRONMENT):
        return None, "libpq environment"
    return None, "embedded"


def build_settings(
    database_url: str | None, acting_user: str | None, debug: bool = False
) -> Settings:
    url, source = resolve_database_url(database_url)
    return Settings(
        database_url=url,
        database_url_source=source,
        acting_user=_acting_user(acting_user),
        debug=debug,
    )


def _acting_user(flag_value: str | None) -> str | None:
    """The acting user's email, lower-cased; None for operator mode.

    An empty value is refused, never read as "no user": `--as "$REVIEWER"` with the variable
    unset would otherwise run as the operator, past every row-level-security policy."""
    given = (("--as", flag_value), ("MIGRATIONPILOT_USER", os.environ.get("MIGRATIONPILOT_USER")))
    for where, value in given:
        if value is not None and not value.strip():
            raise BadInput(
                f"{where} is empty: give a user's email, or leave it out for operator mode"
            )
        if value is not None:
            return value.strip().lower()
    return None
