"""The configuration file: named profiles, pgcli/gh style.

``$XDG_CONFIG_HOME/migrationpilot/config.toml`` (else the platform's user config directory,
``~/.config/migrationpilot`` on Linux), or the file ``MIGRATIONPILOT_CONFIG`` names::

    default_profile = "local"

    [profiles.local]
    user = "ana@acme.test"

    [profiles.prod]
    database_url = "postgresql://mp@db.internal/mp"   # or: service = "mp-prod" (pg_service.conf)
    user = "lead@acme.test"
    format = "json"
    wait = 30

A missing file is no error: it simply holds no profiles. Anything wrong in a file that exists
is refused (exit 2) with one line naming the file and the problem, never half applied.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from migrationpilot_cli.errors import BadInput

CONFIG_VARIABLE = "MIGRATIONPILOT_CONFIG"
# Each key of a profile, and what its value must be; the same names as the environment
# variables' suffixes (MIGRATIONPILOT_USER -> user).
PROFILE_KEYS: dict[str, str] = {
    "database_url": "a connection URL or key=value string",
    "service": "a libpq service name (pg_service.conf)",
    "user": "the acting user's email",
    "format": "an output format",
    "wait": "seconds to keep retrying the connection",
}


class Profile(NamedTuple):  # not a dataclass: cheaper to define, see settings.Setting
    name: str
    path: Path
    database_url: str | None = None
    service: str | None = None
    user: str | None = None
    format: str | None = None
    wait: float | None = None

    @property
    def conninfo(self) -> str | None:
        """The connection string the profile names, if it names one."""
        if self.service is None:
            return self.database_url
        from psycopg.conninfo import make_conninfo  # quotes the name as libpq wants

        return make_conninfo(service=self.service)

    @property
    def source(self) -> str:
        """How ``config show`` and error messages name a value that came from here."""
        return f"profile {self.name} in {self.path}"


class ConfigFile(NamedTuple):
    path: Path
    exists: bool
    default_profile: str | None = None
    profiles: Mapping[str, Profile] = MappingProxyType({})

    def profile(self, name: str, chosen_by: str) -> Profile:
        if name in self.profiles:
            return self.profiles[name]
        known = ", ".join(sorted(self.profiles)) or "none"
        where = str(self.path) if self.exists else f"{self.path} (which does not exist)"
        raise BadInput(f"{chosen_by}: no profile {name!r} in {where}; profiles: {known}")


def config_path() -> tuple[Path, str]:
    """Where the file is, and why there: ``MIGRATIONPILOT_CONFIG``, ``XDG_CONFIG_HOME`` or the
    platform's default. Does not read it."""
    configured = os.environ.get(CONFIG_VARIABLE)
    if configured:
        return Path(configured).expanduser(), CONFIG_VARIABLE
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:  # honoured on every platform, as gh does, not only where platformdirs does
        return Path(xdg).expanduser() / "migrationpilot" / "config.toml", "XDG_CONFIG_HOME"
    if sys.platform.startswith("linux"):  # platformdirs' answer, without importing it per command
        return Path.home() / ".config" / "migrationpilot" / "config.toml", "default"
    import platformdirs

    directory = platformdirs.user_config_dir("migrationpilot", appauthor=False)
    return Path(directory) / "config.toml", "default"


def load(path: Path) -> ConfigFile:
    """Read and validate the whole file; a missing file holds no profiles."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ConfigFile(path, exists=False)
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"{path}: cannot read it: {error}") from error
    import tomllib  # only for a file that exists: every command reads the settings

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{path}: not valid TOML: {error}") from error
    return _parse(path, document)


def _parse(path: Path, document: dict[str, Any]) -> ConfigFile:
    unknown = sorted(set(document) - {"default_profile", "profiles"})
    if unknown:
        raise BadInput(f"{path}: unknown key {unknown[0]!r}; expected default_profile, [profiles]")
    tables = document.get("profiles", {})
    if not isinstance(tables, dict):
        raise BadInput(f"{path}: 'profiles' must be a table of [profiles.NAME] tables")
    profiles = {name: _profile(path, name, values) for name, values in tables.items()}
    config = ConfigFile(path, True, _text(path, "default_profile", document), profiles)
    if config.default_profile is not None:
        config.profile(config.default_profile, f"default_profile {config.default_profile}")
    return config


def _profile(path: Path, name: str, values: Any) -> Profile:
    where = f"{path}: [profiles.{name}]"
    if not isinstance(values, dict):
        raise BadInput(f"{where} must be a table")
    unknown = sorted(set(values) - set(PROFILE_KEYS))
    if unknown:
        raise BadInput(f"{where}: unknown key {unknown[0]!r}; expected {', '.join(PROFILE_KEYS)}")
    if values.get("database_url") and values.get("service"):
        raise BadInput(f"{where}: give database_url or service, not both")
    return Profile(
        name=name,
        path=path,
        database_url=_text(where, "database_url", values),
        service=_text(where, "service", values),
        user=_text(where, "user", values),
        format=_choice(where, "format", values),
        wait=_seconds(where, values),
    )


def _text(where: object, key: str, values: dict[str, Any]) -> str | None:
    value = values.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where}: {key} must be a non-empty string, not {value!r}")
    return value.strip()


def _choice(where: str, key: str, values: dict[str, Any]) -> str | None:
    value = _text(where, key, values)
    if value is not None:
        check_format(value, f"{where}: {key}")
    return value


def check_format(value: str, where: str) -> str:
    from migrationpilot_cli.output import OutputFormat

    known = [choice.value for choice in OutputFormat]
    if value not in known:
        raise BadInput(f"{where} {value!r}: expected one of {', '.join(known)}")
    return value


def _seconds(where: str, values: dict[str, Any]) -> float | None:
    value = values.get("wait")
    if value is None:
        return None
    # TOML booleans are not numbers here, though Python's bool is an int.
    # nan and inf are TOML numbers too; a wait has an end.
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise BadInput(f"{where}: wait must be a number of seconds >= 0, not {value!r}")
    return float(value)
