"""The root command: global options, the sub-apps, and the one error boundary.

Every failure leaves through ``MigrationPilotGroup.main``: one line on stderr and the exit
code of DESIGN.md (0 ok, 1 failed, 2 bad usage or input, 3 database unreachable, 4 not
found). Tracebacks only with ``--debug``.
"""

from __future__ import annotations

import copy
import functools
import importlib
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from migrationpilot_cli import __version__
from migrationpilot_cli.errors import describe
from migrationpilot_cli.inputs import harden
from migrationpilot_cli.options import examples
from migrationpilot_cli.output import printable, set_default_format
from migrationpilot_cli.settings import build_settings

# The sub-apps: command name -> (module in migrationpilot_cli.commands, help panel). A module
# is imported only when its command runs or its help is shown, so `rules list --help` does
# not pay for the others.
SUB_APPS = {
    "db": ("db", "Set up"),
    "config": ("config", "Set up"),
    "demo": ("demo", "Set up"),
    "tenants": ("tenants", "Tenancy"),
    "orgs": ("orgs", "Tenancy"),
    "users": ("users", "Tenancy"),
    "projects": ("projects", "Projects and source"),
    "files": ("files", "Projects and source"),
    "generated": ("generated", "Projects and source"),
    "rules": ("rules", "Rules and reviews"),
    "review": ("review", "Rules and reviews"),
    "tests": ("testcases", "Rules and reviews"),
    "routing": ("routing", "Routing"),
    "audit": ("audit", "Audit"),
}


class _LazyCommands(MutableMapping[str, Any]):
    """A group's commands, each built on first lookup by its builder: running one command
    builds only the groups and the command on its path, since Typer's building of a command
    (reading its signature into Click parameters) costs more than running a listing's query.
    Iterating (for `--help`) builds them all."""

    def __init__(
        self, builders: Mapping[str, Callable[[], Any]], built: MutableMapping[str, Any]
    ) -> None:
        self._builders = dict(builders)
        self._built = built

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            # KeyError for an unknown name. Every command and group is built here: the one
            # place that gives each its input checks (inputs.harden).
            self._built[name] = harden(self._builders[name]())
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._builders.pop(name, None)
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._builders), **dict.fromkeys(self._built)})

    def __len__(self) -> int:
        return len(self._builders.keys() | self._built.keys())


def _build_sub_app(name: str) -> TyperGroup:
    """The group of SUB_APPS[name], the way `app.add_typer` would have built it (same help
    panel, same markup), with its commands built lazily."""
    module_name, panel = SUB_APPS[name]
    sub_app = importlib.import_module(f"migrationpilot_cli.commands.{module_name}").app
    return _lazy_group(typer.models.TyperInfo(sub_app, name=name, rich_help_panel=panel))


def _lazy_group(info: typer.models.TyperInfo) -> TyperGroup:
    """The group of a sub-app (``info``, as `add_typer` records it), its commands and its own
    sub-apps (`projects members`) built on first lookup, like the sub-apps themselves."""
    sub_app = info.typer_instance
    assert sub_app is not None
    shell = copy.copy(sub_app)
    shell.registered_commands = []  # the group without its commands: they come lazily
    shell.registered_groups = []
    group = typer.main.get_group_from_info(
        typer.models.TyperInfo(
            shell, name=info.name, rich_help_panel=info.rich_help_panel, cls=SubAppGroup
        ),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
        suggest_commands=app.suggest_commands,
    )
    builders: dict[str, Callable[[], Any]] = {
        command.name or typer.main.get_command_name(command.callback.__name__): functools.partial(
            typer.main.get_command_from_info,
            command,
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
        )
        for command in sub_app.registered_commands
        if command.callback is not None
    }
    builders.update(
        (str(nested.name), functools.partial(_lazy_group, nested))
        for nested in sub_app.registered_groups
    )
    group.commands = _LazyCommands(builders, group.commands)
    return group


class SubAppGroup(TyperGroup):
    """A sub-app's group: it names the command it resolves as the client of the change, for
    the audit rows the database writes (db.connect.CLIENT)."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            from migrationpilot_cli.db.connect import CLIENT

            CLIENT.set(f"{ctx.command_path} {name}")
        return name, command, rest


class MigrationPilotGroup(TyperGroup):
    """Typer's group with our error boundary around the whole invocation, and the sub-apps
    loaded lazily."""

    def __init__(self, **attributes: Any) -> None:
        super().__init__(**attributes)
        harden(self)  # the global options: --database-url, --as, --wait, ...
        builders = {name: functools.partial(_build_sub_app, name) for name in SUB_APPS}
        self.commands = _LazyCommands(builders, self.commands)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names, without building every sub-app

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        arguments = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(
                arguments, prog_name, complete_var, standalone_mode=False, **extra
            )
            code = result if isinstance(result, int) else 0
        except BaseException as error:
            if isinstance(error, SystemExit | GeneratorExit):
                raise
            message, code = describe(error)
            if "--debug" in arguments:  # for developers; its messages masked all the same
                sys.stderr.write(_safe("".join(traceback.format_exception(error))))
            print(f"error: {_safe(message)}", file=sys.stderr)
        if standalone_mode:
            sys.exit(code)
        return code


def _safe(text: str) -> str:
    """Text for stderr: no password in any libpq form, and no control character a terminal
    would act on (a name in a message may hold one). Line breaks stay: values in messages are
    quoted with their escapes (``'a\\nb'``), and the few messages of several lines mean it
    (`db verify` lists each difference on a line of its own, `--debug` adds the traceback)."""
    from migrationpilot_cli.db.connect import mask_password

    return printable(mask_password(text))


app = typer.Typer(
    name="migrationpilot",
    cls=MigrationPilotGroup,
    help="MigrationPilot: move legacy code (COBOL, Fortran, VB6, VBA, legacy Java) to modern"
    " languages, with PostgreSQL as the system of record.",
    epilog=examples(
        "migrationpilot demo load",
        "migrationpilot rules list --pending --min-confidence 0.9",
        "migrationpilot rules show 3f2a9c1e",
    )
    + "\n\nEvery command has `--help` with examples; the reference is docs/cli.md.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"migrationpilot {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL URL or key=value string. Default: MIGRATIONPILOT_DATABASE_URL,"
            " then DATABASE_URL, then libpq's PG* variables, then the profile's, then the"
            " embedded server.",
            show_default=False,
            rich_help_panel="Connection",
        ),
    ] = None,
    acting_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="EMAIL",
            help="Act as this user: row-level security applies (env MIGRATIONPILOT_USER).",
            show_default=False,
            rich_help_panel="Connection",
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            metavar="NAME",
            help="Use this profile of the config file (env MIGRATIONPILOT_PROFILE; see"
            " `migrationpilot config show`).",
            show_default=False,
            rich_help_panel="Connection",
        ),
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            min=0,
            help="Keep retrying the connection this long while the database does not answer"
            " (containers starting; env MIGRATIONPILOT_WAIT). Default: 0, give up at once.",
            show_default=False,
            rich_help_panel="Connection",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks.", rich_help_panel="Diagnostics")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    settings = build_settings(database_url, acting_user, debug, profile=profile, wait=wait)
    # Asked only when a command renders: a broken config file never breaks `--help`.
    set_default_format(lambda: settings.output_format)
    ctx.obj = settings
