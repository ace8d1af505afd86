"""`migrationpilot config ...`: the resolved settings, the config file and its profiles."""

from typing import Any

import typer

from migrationpilot_cli.options import examples
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    QuietOption,
    listing,
    render,
)
from migrationpilot_cli.settings import Setting, Settings

app = typer.Typer(
    help="Configuration: the settings in effect and where each came from; the profiles.",
    no_args_is_help=True,
)


SETTING_COLUMNS = ("setting", "value", "source")
PROFILE_COLUMNS = ("profile", "default", "database", "user", "format", "wait")


@app.command(
    epilog=examples(
        "migrationpilot --profile prod config show",
        "migrationpilot config show --fields setting,source --format tsv",
    )
)
@listing(SETTING_COLUMNS)
def show(
    ctx: typer.Context,
    fmt: FormatOption = None,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """The settings in effect, each with where it came from.

    A setting comes from a flag, an environment variable, a profile of the config file or
    the default, in that order. Passwords are masked; nothing is connected to or started."""
    from migrationpilot_cli import config
    from migrationpilot_cli.db.connect import mask_password

    settings: Settings = ctx.obj
    resolved = settings.resolved  # first: a broken config file is the error to report
    path, why = config.config_path()
    url = resolved.database_url
    rows = [
        _row("profile", resolved.profile),
        _row("config_file", Setting(str(path), why if path.exists() else f"{why}; not created")),
        _row(
            "database_url",
            Setting(mask_password(str(url.value)) if url.value else None, url.source),
        ),
        _row("acting_user", resolved.acting_user),
        _row("format", resolved.output_format),
        _row("wait", resolved.wait_seconds),
        _row("home", Setting(str(settings.home), settings.home_source)),
    ]
    render(rows, SETTING_COLUMNS, fmt=fmt, fields=fields, header=header, title="Settings")


def _row(name: str, setting: Setting) -> dict[str, Any]:
    return {"setting": name, "value": setting.value, "source": setting.source}


@app.command(
    epilog=examples("migrationpilot config path", '$EDITOR "$(migrationpilot config path)"')
)
def path() -> None:
    """Print the config file's path, whether or not it exists yet.

    `MIGRATIONPILOT_CONFIG`, else `$XDG_CONFIG_HOME/migrationpilot/config.toml`, else the
    platform's config directory (`~/.config/migrationpilot/config.toml` on Linux)."""
    from migrationpilot_cli import config

    typer.echo(str(config.config_path()[0]))


@app.command(epilog=examples("migrationpilot config profiles -q"))
@listing(PROFILE_COLUMNS)
def profiles(
    ctx: typer.Context,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """The config file's profiles, the default one marked.

    The default profile is the one used without --profile or MIGRATIONPILOT_PROFILE."""
    from migrationpilot_cli.db.connect import mask_password

    settings: Settings = ctx.obj
    config_file = settings.config_file
    rows = [
        {
            "profile": name,
            "default": name == config_file.default_profile,
            "database": mask_password(profile.conninfo) if profile.conninfo else None,
            "user": profile.user,
            "format": profile.format,
            "wait": profile.wait,
        }
        for name, profile in sorted(config_file.profiles.items())
    ]
    render(
        rows,
        PROFILE_COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        id_column="profile",
        title="Profiles",
    )
