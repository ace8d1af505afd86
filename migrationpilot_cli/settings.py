"""Everything a command needs to know about how it was invoked, resolved once.

The root callback builds one ``Settings`` from the global flags and puts it on ``ctx.obj``;
commands read it and never look at the environment or the config file themselves.

Each setting is resolved on its own: flag > environment > profile > default. Nothing is
resolved until a command first asks (so ``--help`` never reads the config file, and a broken
one cannot break it); then everything is resolved at once, so a bad config file stops the
command before it has touched the database.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from migrationpilot_cli.errors import BadInput

if TYPE_CHECKING:
    from migrationpilot_cli.config import ConfigFile, Profile

# libpq reads these itself; when any is set we let libpq resolve the connection.
LIBPQ_ENVIRONMENT = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")
EMBEDDED = "embedded"


# Records as NamedTuples, not dataclasses: every command imports this module, and a frozen
# dataclass costs about 1 ms to define.
class Setting(NamedTuple):
    value: str | float | None
    source: str
    """Where the value came from: a flag, an environment variable, ``profile NAME in FILE``,
    or ``default``/``embedded``."""


class Resolved(NamedTuple):
    profile: Setting
    database_url: Setting
    acting_user: Setting
    output_format: Setting
    wait_seconds: Setting


@dataclass(frozen=True)
class Settings:
    database_url_flag: str | None = None
    acting_user_flag: str | None = None
    profile_flag: str | None = None
    wait_flag: float | None = None
    debug: bool = False

    @cached_property
    def config_file(self) -> ConfigFile:
        from migrationpilot_cli import config

        return config.load(config.config_path()[0])

    @cached_property
    def resolved(self) -> Resolved:
        profile, profile_source = self._profile()
        return Resolved(
            profile=Setting(profile.name if profile else None, profile_source),
            database_url=self._database_url(profile),
            acting_user=self._acting_user(profile),
            output_format=self._output_format(profile),
            wait_seconds=self._wait_seconds(profile),
        )

    @property
    def database_url(self) -> str | None:
        """Explicit connection string (URL or key=value), or None for libpq env / embedded."""
        return _text(self.resolved.database_url)

    @property
    def database_url_source(self) -> str:
        return self.resolved.database_url.source

    @property
    def acting_user(self) -> str | None:
        return _text(self.resolved.acting_user)

    @property
    def output_format(self) -> str | None:
        """The configured default for ``--format``; None: table on a terminal, tsv piped."""
        return _text(self.resolved.output_format)

    @property
    def wait_seconds(self) -> float:
        """How long to keep retrying a connection that is refused (containers starting)."""
        return float(self.resolved.wait_seconds.value or 0)

    @property
    def uses_embedded_server(self) -> bool:
        return self.database_url is None and self.database_url_source == EMBEDDED

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
    def home_source(self) -> str:
        return "MIGRATIONPILOT_HOME" if os.environ.get("MIGRATIONPILOT_HOME") else "default"

    def _profile(self) -> tuple[Profile | None, str]:
        """--profile > MIGRATIONPILOT_PROFILE > the file's default_profile > none."""
        config = self.config_file
        for name, source in (
            (self.profile_flag, "--profile"),
            (os.environ.get("MIGRATIONPILOT_PROFILE"), "MIGRATIONPILOT_PROFILE"),
            (config.default_profile, f"default_profile in {config.path}"),
        ):
            if name:
                return config.profile(name, f"{source} {name}"), source
        return None, "default: none"

    def _database_url(self, profile: Profile | None) -> Setting:
        """--database-url > MIGRATIONPILOT_DATABASE_URL > DATABASE_URL > libpq's PG* variables
        > the profile > the embedded server. libpq's variables are environment too: a one-off
        ``PGHOST=replica migrationpilot ...`` beats the configured profile, as with psql."""
        if self.database_url_flag:
            return Setting(self.database_url_flag, "--database-url")
        for variable in ("MIGRATIONPILOT_DATABASE_URL", "DATABASE_URL"):
            if os.environ.get(variable):
                return Setting(os.environ[variable], variable)
        libpq = [variable for variable in LIBPQ_ENVIRONMENT if os.environ.get(variable)]
        if libpq:
            return Setting(None, f"libpq environment ({', '.join(libpq)})")
        if profile is not None and profile.conninfo:
            return Setting(profile.conninfo, profile.source)
        return Setting(None, EMBEDDED)

    def _acting_user(self, profile: Profile | None) -> Setting:
        """--as > MIGRATIONPILOT_USER > the profile > operator mode.

        An empty value is refused, never read as "no user": `--as "$REVIEWER"` with the
        variable unset would otherwise run as the operator, past every row-level-security
        policy."""
        for value, source in (
            (self.acting_user_flag, "--as"),
            (os.environ.get("MIGRATIONPILOT_USER"), "MIGRATIONPILOT_USER"),
            (profile.user if profile else None, profile.source if profile else ""),
        ):
            if value is not None and not value.strip():
                raise BadInput(
                    f"{source} is empty: give a user's email, or leave it out for operator mode"
                )
            if value is not None:
                return Setting(value.strip().lower(), source)
        return Setting(None, "default: operator mode")

    def _output_format(self, profile: Profile | None) -> Setting:
        from migrationpilot_cli.config import check_format

        variable = os.environ.get("MIGRATIONPILOT_FORMAT")
        if variable:
            return Setting(check_format(variable, "MIGRATIONPILOT_FORMAT"), "MIGRATIONPILOT_FORMAT")
        if profile is not None and profile.format:
            return Setting(profile.format, profile.source)
        return Setting(None, "default: table on a terminal, tsv when piped")

    def _wait_seconds(self, profile: Profile | None) -> Setting:
        if self.wait_flag is not None:
            return Setting(self.wait_flag, "--wait")
        variable = os.environ.get("MIGRATIONPILOT_WAIT")
        if variable:
            return Setting(_seconds(variable, "MIGRATIONPILOT_WAIT"), "MIGRATIONPILOT_WAIT")
        if profile is not None and profile.wait is not None:
            return Setting(profile.wait, profile.source)
        return Setting(0.0, "default: no retrying")


def _text(setting: Setting) -> str | None:
    return None if setting.value is None else str(setting.value)


def _seconds(text: str, where: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1
    if not 0 <= seconds < math.inf:  # also refuses nan: a wait has an end
        raise BadInput(f"{where}={text!r}: expected a number of seconds >= 0")
    return seconds


def build_settings(
    database_url: str | None,
    acting_user: str | None,
    debug: bool = False,
    *,
    profile: str | None = None,
    wait: float | None = None,
) -> Settings:
    """The settings for the global flags given; the rest comes from the environment and the
    config file when first needed."""
    return Settings(database_url, acting_user, profile, wait, debug)
