"""MigrationPilot command-line tool."""

__version__ = "0.1.0"


def main() -> None:
    """The console script. Scripts call `--version` in loops: it is answered here, before
    Typer and the command modules are imported (a third of the time of `import typer`)."""
    import sys

    if sys.argv[1:] == ["--version"]:
        print(f"migrationpilot {__version__}")
        return
    from migrationpilot_cli.app import main as run

    run()
