"""The review queue's pieces: the selected rule beside the queue, the prompts for a comment,
a search or a category, and the help screen. Text from the database is shown as Rich Text,
never as markup, so a rule named ``[bold]`` reads as typed."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from migrationpilot_cli import refs
from migrationpilot_cli.output import printable
from migrationpilot_cli.vocabulary import RuleCategory

KEYS = """\
a  approve the rule                  j / down   next rule
r  reject it (asks why)              k / up     previous rule
c  ask for clarification             n          next rule still pending
e  a comment for the next decision   /          search the queue
u  undo your last decision           f          filter by category
?  this help                         q          quit (prints a summary)

Each decision is its own transaction, made on the version shown: if someone changed the
rule since, it is refused and reloaded."""


def rule_view(rule: dict[str, Any]) -> RenderableType:
    """Everything a reviewer reads of a rule, its source lines last, highlighted."""
    heading = Text(printable(rule["name"]), style="bold")
    facts = Text(
        f"{refs.short(rule['id'])} · {rule['category']} · confidence {rule['confidence']}"
        f" · {rule['review_status']} · version {rule['version']}"
        f" ({rule['versions']} {'version' if rule['versions'] == 1 else 'versions'} kept)",
        style="dim",
    )
    parts: list[RenderableType] = [heading, facts, Text("")]
    for label, value in (
        ("Description", rule["description"]),
        ("Logic", rule["logic"]),
        ("Formula", rule["formula"] or "-"),
        ("Inputs", _items(rule["inputs"])),
        ("Outputs", _items(rule["outputs"])),
    ):
        parts += [Text(label, style="bold underline"), Text(printable(value)), Text("")]
    if rule["review_comments"]:
        comment = Text(printable(rule["review_comments"]))
        parts += [Text("Review comment", style="bold underline"), comment]
        parts.append(Text(""))
    parts += [Text(_where(rule), style="bold underline"), _source(rule)]
    return Group(*parts)


def _items(values: list[Any]) -> str:
    return ", ".join(v if isinstance(v, str) else json.dumps(v) for v in values) or "-"


def _where(rule: dict[str, Any]) -> str:
    return f"{rule['source_file']} lines {rule['source_start_line']}-{rule['source_end_line']}"


def _source(rule: dict[str, Any]) -> RenderableType:
    # The same highlighting as `files show` and `rules show`.
    from migrationpilot_cli.commands.files import LEXERS

    lines = range(rule["source_start_line"], rule["source_end_line"] + 1)
    return Syntax(
        rule["excerpt"] or "",
        LEXERS.get(rule["source_language"] or "", "text"),
        line_numbers=True,
        start_line=rule["excerpt_start"],
        highlight_lines=set(lines),
        word_wrap=False,
    )


class Prompt(ModalScreen[str | None]):
    """One line of text: a comment, a question, a search. Escape cancels (None)."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]  # noqa: RUF012 (Textual's convention)

    def __init__(self, question: str, *, value: str = "", required: bool = True) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.required = required

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.question))
            yield Input(value=self.value, id="answer")
            yield Label("", id="problem")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        answer = event.value.strip()
        if self.required and not answer:
            self.query_one("#problem", Label).update("required: type it, or escape to cancel")
            return
        self.dismiss(answer)

    def action_cancel(self) -> None:
        self.dismiss(None)


ANY_CATEGORY = "any"


class CategoryPicker(ModalScreen[str | None]):
    """Choose the category the queue shows (or any). Escape cancels (None)."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]  # noqa: RUF012

    def compose(self) -> ComposeResult:
        choices = [ANY_CATEGORY, *(category.value for category in RuleCategory)]
        with Vertical(classes="dialog"):
            yield Label("Show rules of category:")
            yield OptionList(*(Option(choice, id=choice) for choice in choices))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Help(ModalScreen[None]):
    BINDINGS = [  # noqa: RUF012
        Binding("escape", "close", "close"),
        Binding("question_mark", "close", "close"),
        Binding("q", "close", "close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(KEYS))

    def action_close(self) -> None:
        self.dismiss(None)
