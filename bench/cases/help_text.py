"""help: one command's `--help` against a two-option minimal Typer app."""

from bench.data import Context
from bench.measure import BENCH, MP, PYTHON, Case, Command, case

NAME = "help"


def build(ctx: Context) -> Case:
    return case(
        NAME,
        Command([MP, "rules", "list", "--help"]),
        Command([PYTHON, str(BENCH / "minimal_app.py"), "things", "list", "--help"]),
        "migrationpilot rules list --help",
        "bench/minimal_app.py things list --help",
        "<= 1.2",
    )
