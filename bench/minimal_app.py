"""The floor of the `help` case: the smallest Typer app shaped like ours (a group holding a
group holding a command) with the same help settings (Markdown help text, `-h`). Its
`things list --help` costs what Typer itself costs; the rest of `rules list --help` is ours."""

import typer

app = typer.Typer(
    rich_markup_mode="markdown", context_settings={"help_option_names": ["-h", "--help"]}
)
things = typer.Typer(help="Things.")
app.add_typer(things, name="things")


@app.callback()
def root(debug: bool = False) -> None:
    """A minimal app."""


@things.command("list")
def list_(limit: int | None = None, fmt: str = "table") -> None:
    """List things. Example: `minimal things list --limit 5`."""


if __name__ == "__main__":
    app()
