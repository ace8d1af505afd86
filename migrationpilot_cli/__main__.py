"""The entry point: the `migrationpilot` console script and `python -m migrationpilot_cli`.

Scripts call `--version` in loops: it is answered here, before Typer and the command modules
are imported (a third of the time of `import typer`); anything else runs the app."""

import sys

from migrationpilot_cli import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        print(f"migrationpilot {__version__}")
        return
    from migrationpilot_cli.app import app

    app()


if __name__ == "__main__":
    main()
