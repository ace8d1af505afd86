"""The entry point: the `migrationpilot` console script and `python -m migrationpilot_cli`.

Scripts call `--version` in loops: it is answered here, before Typer and the command modules
are imported (a third of the time of `import typer`); anything else runs the app."""

import gc
import sys

from migrationpilot_cli import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        print(f"migrationpilot {__version__}")
        return
    # A command is a short process that imports a large graph of long-lived objects (Typer,
    # Click, Rich, psycopg) and makes few reference cycles of its own. The cyclic collector
    # would walk that graph over and over while the imports allocate (a pass every 700 new
    # objects by default) and once more at exit. A higher threshold makes its passes rare;
    # gc.freeze() takes what is already imported out of them. A threshold, not gc.disable():
    # a long command (an import of a million rules, the TUI) still has its cycles collected,
    # so its memory stays bounded.
    gc.set_threshold(50_000)
    from migrationpilot_cli.app import app

    gc.freeze()
    try:
        app()
    finally:
        # The process ends here: the collection at exit would walk every object only for the
        # cycles among them, whose memory goes back to the system with the process anyway.
        gc.freeze()


if __name__ == "__main__":
    main()
