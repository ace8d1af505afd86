"""start-up: `--version` against importing Typer alone."""

from bench.data import Context
from bench.measure import MP, PYTHON, Case, Command, case

NAME = "start-up"


def build(ctx: Context) -> Case:
    return case(
        NAME,
        Command([MP, "--version"]),
        Command([PYTHON, "-c", "import typer"]),
        "migrationpilot --version",
        'python -c "import typer"',
        "<= 1.2",
    )
