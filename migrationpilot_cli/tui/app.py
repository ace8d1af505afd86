"""`review queue` on a terminal: the queue, the selected rule with its source, one key per
decision. The state and every database call are the session's (tui/session.py); this module
only shows them and maps keys to them."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Static

from migrationpilot_cli import refs
from migrationpilot_cli.errors import ChangedMeanwhile, describe
from migrationpilot_cli.output import printable
from migrationpilot_cli.tui.session import ReviewSession, describe_filters
from migrationpilot_cli.tui.widgets import ANY_CATEGORY, CategoryPicker, Help, Prompt, rule_view

COLUMNS = ("id", "name", "category", "confidence", "status")
NAME_WIDTH = 28
# Read the next page this many rows before the cursor reaches the end of what is loaded.
PREFETCH = 10
PAST = {"approve": "approved", "reject": "rejected", "clarify": "sent back for clarification"}


class ReviewQueue(App[None]):
    """Exits with return code 3 and ``failure`` set when the connection is lost."""

    TITLE = "migrationpilot review queue"
    CSS = """
    #queue-pane { width: 84; }
    #queue { height: 1fr; }
    #position { height: 1; background: $boost; padding: 0 1; }
    #detail { width: 1fr; border-left: solid $primary; padding: 0 1; }
    #message { height: auto; max-height: 3; padding: 0 1; background: $panel; }
    .dialog { width: 70; height: auto; padding: 1 2; border: thick $primary; background: $surface; }
    Prompt, CategoryPicker, Help { align: center middle; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "decide('approve')", "approve"),
        Binding("r", "decide('reject')", "reject"),
        Binding("c", "decide('clarify')", "clarify"),
        Binding("e", "note", "comment"),
        Binding("j", "move(1)", "down", show=False),
        Binding("k", "move(-1)", "up", show=False),
        Binding("n", "next_pending", "next undecided"),
        Binding("slash", "search", "search"),
        Binding("f", "category", "category"),
        Binding("u", "undo", "undo"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, session: ReviewSession) -> None:
        super().__init__()
        self.session = session
        self.shown: dict[str, Any] | None = None  # the rule in the detail pane, as read
        self.note: str | None = None  # `e`: the comment of the next decision
        self.failure: str | None = None
        self.said = ""  # the message line, as last set

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="queue-pane"):
                yield DataTable(id="queue", cursor_type="row", zebra_stripes=True)
                yield Static(id="position")
            with VerticalScroll(id="detail"):
                yield Static(id="rule")
        yield Static(id="message")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            # Long names are cut so that the status column stays on the screen.
            table.add_column(column, key=column, width=NAME_WIDTH if column == "name" else None)
        self._fill()
        table.focus()

    # -- the queue ---------------------------------------------------------------------

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self._add_rows(self.session.rows)
        if not self.session.rows:
            self.shown = None
            self.query_one("#rule", Static).update(Text("No rule in this queue."))
            self._position()

    def _add_rows(self, rows: list[dict[str, Any]]) -> None:
        table = self.query_one(DataTable)
        for row in rows:
            table.add_row(*_cells(row), key=str(row["id"]))

    def _position(self) -> None:
        table = self.query_one(DataTable)
        at = table.cursor_row + 1 if self.session.rows else 0
        line = f"{at} of {self.session.total} {describe_filters(self.session.filters)}"
        self.query_one("#position", Static).update(Text(line))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._guarded(self._show, event.cursor_row)

    def _show(self, index: int) -> None:
        if index >= len(self.session.rows) - PREFETCH:
            self._add_rows(self.session.load_more())
        self.shown = self.session.rule(index)
        self._refresh_row(index)
        self.query_one("#rule", Static).update(rule_view(self.shown))
        self.query_one("#detail", VerticalScroll).scroll_home(animate=False)
        self._position()

    def _refresh_row(self, index: int) -> None:
        table = self.query_one(DataTable)
        row = self.session.rows[index]
        for column, value in zip(COLUMNS, _cells(row), strict=True):
            table.update_cell(str(row["id"]), column, value)

    def _move_to(self, index: int) -> None:
        table = self.query_one(DataTable)
        if index == table.cursor_row:
            self._guarded(self._show, index)  # no highlight event: reload it here
        else:
            table.move_cursor(row=index)

    # -- keys --------------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=max(0, table.cursor_row + step))

    def action_next_pending(self) -> None:
        start = self.query_one(DataTable).cursor_row + 1
        index = start
        while True:
            if index >= len(self.session.rows):
                if not self._guarded(self.session.load_more):
                    self._say("no pending rule below this one")
                    return
                self._add_rows(self.session.rows[index:])
            if self.session.rows[index]["review_status"] == "pending":
                self._move_to(index)
                return
            index += 1

    def action_decide(self, verb: str) -> None:
        if self.shown is None:
            return
        if verb == "approve":
            self._decide(verb, self.note)
            return
        question = "Why reject it?" if verb == "reject" else "What should be clarified?"
        shown = self.shown
        self.push_screen(
            Prompt(question, value=self.note or ""),
            lambda answer: None if answer is None else self._decide(verb, answer, shown),
        )

    def _decide(self, verb: str, comment: str | None, shown: dict[str, Any] | None = None) -> None:
        rule = shown or self.shown
        assert rule is not None
        index = self.query_one(DataTable).cursor_row
        try:
            version = self.session.decide(rule, verb, comment)
        except ChangedMeanwhile:
            self._changed_meanwhile(rule, index)
            return
        except Exception as error:
            self._failed(error)
            return
        self.note = None
        self.session.rows[index] |= {"review_status": _status(verb), "version": version}
        self._refresh_row(index)
        self._say(f"{PAST[verb]} {refs.short(rule['id'])} (version {version})")
        if index + 1 < len(self.session.rows):
            self._move_to(index + 1)
        else:
            self._move_to(index)

    def _changed_meanwhile(self, rule: dict[str, Any], index: int) -> None:
        def reload() -> None:
            self._show(index)
            assert self.shown is not None
            fields = self.session.changes(rule["id"], rule["version"], self.shown["version"])
            self._say(
                f"refused: rule {refs.short(rule['id'])} changed since it was shown (version"
                f" {rule['version']} -> {self.shown['version']}: {', '.join(fields) or 'deleted'});"
                " reloaded, review it again"
            )

        self._guarded(reload)

    def action_note(self) -> None:
        def keep(answer: str | None) -> None:
            if answer is not None:
                self.note = answer or None
                self._say(f"next decision's comment: {answer}" if answer else "comment cleared")

        self.push_screen(Prompt("Comment for the next decision:", value=self.note or ""), keep)

    def action_undo(self) -> None:
        try:
            undone = self.session.undo()
        except ChangedMeanwhile:
            self._say("not undone: the rule changed since your decision")
            return
        except Exception as error:
            self._failed(error)
            return
        if undone is None:
            self._say("nothing to undo")
            return
        index = next(
            (i for i, row in enumerate(self.session.rows) if row["id"] == undone.rule_id), None
        )
        self._say(f"undid {undone.verb} of {refs.short(undone.rule_id)}")
        if index is not None:
            self._move_to(index)

    def action_search(self) -> None:
        current = self.session.filters["search"] or ""
        self.push_screen(
            Prompt("Search name, description, logic, formula:", value=current, required=False),
            lambda text: None if text is None else self._refilter(search=text or None),
        )

    def action_category(self) -> None:
        self.push_screen(
            CategoryPicker(),
            lambda choice: (
                None
                if choice is None
                else self._refilter(category=None if choice == ANY_CATEGORY else choice)
            ),
        )

    def _refilter(self, **changes: Any) -> None:
        if self._guarded(self.session.reload, **changes) is False:
            return
        self._fill()
        if self.session.rows:
            self._move_to(0)

    def action_help(self) -> None:
        self.push_screen(Help())

    # -- messages and failures ---------------------------------------------------------

    def _say(self, message: str) -> None:
        self.said = message
        self.query_one("#message", Static).update(Text(message))

    def _guarded(self, work: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``work``; a database error becomes a message (False returned)."""
        try:
            return work(*args, **kwargs)
        except Exception as error:
            self._failed(error)
            return False

    def _failed(self, error: Exception) -> None:
        message, code = describe(error)
        # The connection is gone (nothing answered, or the server ended the session, which
        # comes with a SQLSTATE): nothing more can be done here.
        if code == 3 or self.session.conn.broken:
            self.failure = message if code == 3 else f"lost the database connection: {message}"
            self.exit(return_code=3)
            return
        self._say(f"error: {printable(message)}")


def _cells(row: dict[str, Any]) -> tuple[Text, ...]:
    return tuple(
        Text(printable(str(value)))
        for value in (
            refs.short(row["id"]),
            row["name"],
            row["category"],
            row["confidence"],
            row["review_status"],
        )
    )


def _status(verb: str) -> str:
    from migrationpilot_cli.queries.reviews import STATUS_OF

    return STATUS_OF[verb]
