"""`review queue`: the reviewer's workbench, driven through Textual's pilot against the demo
data in a real database, as a reviewer would use it; its listing when not on a terminal; and
once through the installed console script in a pseudo-terminal."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest

from migrationpilot_cli.db.connect import CLIENT
from migrationpilot_cli.settings import build_settings
from tests.conftest import CONSOLE_SCRIPT, rows

CLIENT_NAME = "migrationpilot review queue"
ANA = "ana@acme.test"
PENDING = {
    "status": "pending",
    "category": None,
    "min_confidence": None,
    "max_confidence": None,
    "source_file": None,
    "search": None,
    "sort": "-confidence",
}


@pytest.fixture
def demo(mp: Any) -> Any:
    loaded = mp("demo", "load")
    assert loaded.exit_code == 0, loaded.stderr
    return mp


@pytest.fixture
def client_name() -> Iterator[None]:
    """What the command line sets as it resolves `review queue` (app.SubAppGroup)."""
    token = CLIENT.set(CLIENT_NAME)
    yield
    CLIENT.reset(token)


def queue_order(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """The pending queue as `rules list` orders it: confidence descending, then id."""
    return rows(
        conn,
        "SELECT id, name FROM business_rules WHERE review_status = 'pending'"
        " ORDER BY confidence DESC, id",
    )


def rule_row(conn: psycopg.Connection[Any], rule_id: UUID) -> tuple[Any, ...]:
    (row,) = rows(
        conn,
        "SELECT r.review_status::text, r.version, u.email, r.review_comments"
        " FROM business_rules r LEFT JOIN users u ON u.id = r.reviewed_by WHERE r.id = %s",
        rule_id,
    )
    return row


def audit(conn: psycopg.Connection[Any], rule_id: UUID) -> list[tuple[Any, ...]]:
    return rows(
        conn,
        "SELECT action, metadata ->> 'client' FROM audit_logs"
        " WHERE resource_id = %s AND action LIKE 'rule.%%' ORDER BY created_at, id",
        rule_id,
    )


def everything(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    return {
        "rules": rows(conn, "SELECT * FROM business_rules ORDER BY id"),
        "versions": rows(conn, "SELECT rule_id, version FROM rule_versions ORDER BY 1, 2"),
        "audit": rows(conn, "SELECT id FROM audit_logs ORDER BY id"),
    }


def drive(
    database_url: str,
    steps: Callable[[Any, Any], Any],
    *,
    user: str = ANA,
    filters: dict[str, Any] | None = None,
    project: str | None = "Loans core",
) -> Any:
    """Open the queue as ``user`` and run ``await steps(app, pilot)`` in a headless app."""
    from migrationpilot_cli.tui.app import ReviewQueue
    from migrationpilot_cli.tui.session import open_session

    settings = build_settings(database_url, user, False)
    session = open_session(settings, dict(filters or PENDING), project, None)
    app = ReviewQueue(session)

    async def run() -> Any:
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            return await steps(app, pilot)

    try:
        result = asyncio.run(run())
    finally:
        session.conn.close()
    return app, result


async def answer(app: Any, pilot: Any, text: str) -> None:
    """Answer the open prompt (typing key by key is slow in the pilot; one test does it)."""
    app.screen.query_one("Input").value = text
    await pilot.press("enter")


def message(app: Any) -> str:
    return app.said  # type: ignore[no-any-return]


def shown_id(app: Any) -> UUID:
    return app.shown["id"]  # type: ignore[no-any-return]


def test_opens_on_the_first_rule_of_the_queue_with_its_source_and_position(
    demo: Any, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    order = queue_order(conn)

    async def look(app: Any, pilot: Any) -> dict[str, Any]:
        return {
            "shown": shown_id(app),
            "position": str(app.query_one("#position").render()),
            "rows": app.query_one("DataTable").row_count,
        }

    _, seen = drive(database_url, look)
    assert seen["shown"] == order[0][0]
    assert seen["position"] == f"1 of {len(order)} pending"
    assert seen["rows"] == len(order)


def test_approve_records_the_reviewer_a_version_and_an_audit_row_and_moves_on(
    demo: Any, database_url: str, conn: psycopg.Connection[Any], client_name: None
) -> None:
    first, second = (row[0] for row in queue_order(conn)[:2])
    before = rule_row(conn, first)[1]

    async def approve(app: Any, pilot: Any) -> UUID:
        await pilot.press("a")
        return shown_id(app)

    app, now_shown = drive(database_url, approve)
    assert rule_row(conn, first) == ("approved", before + 1, ANA, None)
    assert audit(conn, first)[-1] == ("rule.approve", CLIENT_NAME)
    assert now_shown == second
    assert message(app) == f"approved {first.hex[:8]} (version {before + 1})"


def test_reject_asks_for_a_required_comment(
    demo: Any, database_url: str, conn: psycopg.Connection[Any], client_name: None
) -> None:
    first = queue_order(conn)[0][0]

    async def reject(app: Any, pilot: Any) -> str:
        await pilot.press("r", "enter")  # no comment: the prompt stays open
        problem = str(app.screen.query_one("#problem").render())
        await pilot.press(*"wrong rounding", "enter")
        return problem

    _, problem = drive(database_url, reject)
    assert problem.startswith("required")
    assert rule_row(conn, first)[::2] == ("rejected", ANA)
    assert rule_row(conn, first)[3] == "wrong rounding"
    assert audit(conn, first)[-1] == ("rule.reject", CLIENT_NAME)


def test_clarify_asks_the_question_and_e_comments_the_next_approval(
    demo: Any, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    first, second = (row[0] for row in queue_order(conn)[:2])

    async def decide(app: Any, pilot: Any) -> None:
        await pilot.press("c")
        await answer(app, pilot, "which branch?")
        await pilot.press("e")
        await answer(app, pilot, "matches spec")
        await pilot.press("a")

    drive(database_url, decide)
    assert rule_row(conn, first)[::3] == ("needs_clarification", "which branch?")
    assert rule_row(conn, second)[::3] == ("approved", "matches spec")


def test_undo_restores_the_previous_status_as_a_new_audited_version(
    demo: Any, database_url: str, conn: psycopg.Connection[Any], client_name: None
) -> None:
    first = queue_order(conn)[0][0]
    version = rule_row(conn, first)[1]

    async def approve_then_undo(app: Any, pilot: Any) -> tuple[UUID, str]:
        await pilot.press("a", "u")
        return shown_id(app), app.session.summary()

    _, (shown, summary) = drive(database_url, approve_then_undo)
    assert rule_row(conn, first) == ("pending", version + 2, None, None)
    assert [action for action, _ in audit(conn, first)[-2:]] == ["rule.approve", "rule.reopen"]
    assert rows(
        conn,
        "SELECT change_reason FROM rule_versions WHERE rule_id = %s AND version = %s",
        first,
        version + 2,
    ) == [("undo approve",)]
    assert shown == first  # back on the rule, to decide again
    assert summary.startswith("review queue: 0 approved")


def test_undo_is_refused_when_the_rule_changed_since(
    demo: Any, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    first = queue_order(conn)[0][0]

    async def approve_edit_undo(app: Any, pilot: Any) -> None:
        await pilot.press("a")
        conn.execute(
            "UPDATE business_rules SET review_comments = 'by someone else' WHERE id = %s", (first,)
        )
        await pilot.press("u")

    app, _ = drive(database_url, approve_edit_undo)
    assert message(app) == "not undone: the rule changed since your decision"
    assert rule_row(conn, first)[0] == "approved"


def test_a_rule_changed_since_it_was_shown_is_refused_and_reloaded(
    demo: Any, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    first = queue_order(conn)[0][0]
    version = rule_row(conn, first)[1]

    async def approve_after_an_edit(app: Any, pilot: Any) -> tuple[str, int]:
        # Another session edits the rule while Ana reads it.
        conn.execute(
            "UPDATE business_rules SET logic = logic || ' (fixed)' WHERE id = %s", (first,)
        )
        await pilot.press("a")
        refused = message(app)
        shown_version = app.shown["version"]
        await pilot.press("a")  # she reads it again and approves the new version
        return refused, shown_version

    _, (refused, shown_version) = drive(database_url, approve_after_an_edit)
    assert refused == (
        f"refused: rule {first.hex[:8]} changed since it was shown (version {version} ->"
        f" {version + 1}: logic); reloaded, review it again"
    )
    assert shown_version == version + 1
    assert rule_row(conn, first)[:3] == ("approved", version + 2, ANA)


def test_a_viewer_pressing_a_gets_the_role_error_and_nothing_changes(
    demo: Any, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    before = everything(conn)

    async def approve(app: Any, pilot: Any) -> str:
        await pilot.press("a")
        return message(app)

    _, said = drive(database_url, approve, user="viewer@acme.test")
    assert said.startswith("error: permission denied: reviewer role required to review rules")
    assert everything(conn) == before


def test_q_quits_with_a_summary_of_the_session(
    demo: Any, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    async def work(app: Any, pilot: Any) -> None:
        await pilot.press("a", "j", "r")
        await answer(app, pilot, "no")
        await pilot.press("q")

    app, _ = drive(database_url, work)
    assert app.return_code == 0
    # Seen: the first (approved), the second (passed over), the third (rejected), the fourth.
    assert app.session.summary() == "review queue: 1 approved, 1 rejected, 0 clarified, 2 skipped"


def test_search_and_category_filter_the_queue_like_rules_list(
    demo: Any, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    from migrationpilot_cli.vocabulary import RuleCategory

    def listed(*options: str) -> list[str]:
        out = demo("rules", "list", "--pending", "--project", "Loans core", *options, "-q")
        return out.stdout.split()

    async def filter_(app: Any, pilot: Any) -> tuple[list[str], list[str], str]:
        await pilot.press("slash", *"rate", "enter")
        searched = [str(row["id"]) for row in app.session.rows]
        await pilot.press("slash")
        await answer(app, pilot, "")  # no search
        choice = [category.value for category in RuleCategory].index("validation") + 1
        await pilot.press("f", *["down"] * choice, "enter")
        return searched, [str(row["id"]) for row in app.session.rows], message(app)

    _, (searched, validation, _) = drive(database_url, filter_)
    assert searched == listed("--search", "rate") != []
    assert validation == listed("--category", "validation") != []


def test_a_lost_connection_ends_the_app_with_exit_3(
    demo: Any, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    async def approve_without_a_server(app: Any, pilot: Any) -> None:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE 'migrationpilot%' AND pid <> pg_backend_pid()"
        )
        await pilot.press("a")
        await pilot.pause()

    app, _ = drive(database_url, approve_without_a_server)
    assert app.return_code == 3, app.said
    assert app.failure.startswith("lost the database connection")


def test_pages_follow_the_queue_order_without_loading_it_all(
    loans_with_many_rules: UUID, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    from migrationpilot_cli.tui.session import PAGE

    order = [row[0] for row in queue_order(conn)]

    async def walk(app: Any, pilot: Any) -> tuple[int, list[UUID]]:
        loaded_at_first = len(app.session.rows)
        app.query_one("DataTable").move_cursor(row=loaded_at_first - 1)
        await pilot.pause()  # the cursor near the end of what is loaded: the next page comes
        return loaded_at_first, [row["id"] for row in app.session.rows]

    _, (first_page, loaded) = drive(database_url, walk, project="Many")
    assert first_page == PAGE
    assert loaded == order[: len(loaded)] and PAGE < len(loaded) < len(order)


@pytest.mark.parametrize("sort", ["-confidence", "confidence", "name", "-file", "extracted"])
def test_keyset_pages_join_into_the_whole_listing(
    loans_with_many_rules: UUID, database_url: str, sort: str
) -> None:
    from migrationpilot_cli.queries import rules

    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as owner:
        whole = [row["id"] for row in rules.list_rules(owner, sort=sort)]
        paged: list[UUID] = []
        page: list[dict[str, Any]] = []
        while True:
            page = rules.list_rules(owner, sort=sort, limit=7, after=page[-1] if page else None)
            paged += [row["id"] for row in page]
            if len(page) < 7:
                break
    assert paged == whole


@pytest.fixture
def loans_with_many_rules(acme: Any, conn: psycopg.Connection[Any]) -> UUID:
    """A project of 250 pending rules with many ties in confidence, file and line."""
    created = acme(
        "--as", ANA, "projects", "create", "Many", "--source", "cobol", "--target", "java", "-q"
    )
    project = UUID(created.stdout.strip())
    conn.execute(
        "INSERT INTO business_rules (description, source_file, source_start_line,"
        " source_end_line, source_code, logic, organization_id, project_id, name, category,"
        " confidence)"
        " SELECT 'extracted', 'src/F' || (n %% 3) || '.cbl', n %% 5 + 1, n %% 5 + 1, 'X.', 'x',"
        " p.organization_id, p.id, 'rule ' || n, 'calculation', 0.5 + (n %% 4) / 10.0"
        " FROM projects p, generate_series(1, 250) AS n WHERE p.id = %s",
        (project,),
    )
    return project


def test_no_tui_and_a_pipe_print_the_queue_as_rules_list(demo: Any) -> None:
    expected = demo("rules", "list", "--pending", "--project", "Loans core")
    no_tui = demo("--as", ANA, "review", "queue", "--project", "Loans core", "--no-tui")
    piped = demo("review", "queue", "--project", "Loans core")
    assert expected.exit_code == no_tui.exit_code == piped.exit_code == 0
    assert no_tui.stdout == piped.stdout == expected.stdout != ""
    approved = demo("review", "queue", "--status", "approved", "--min-confidence", "0.9")
    assert (
        approved.stdout
        == demo("rules", "list", "--status", "approved", "--min-confidence", "0.9").stdout
    )


def test_bad_filters_are_refused_before_anything_opens(demo: Any) -> None:
    both = demo("--as", ANA, "review", "queue", "--pending", "--status", "approved")
    assert (both.exit_code, both.stdout) == (2, "")
    assert both.stderr.strip().splitlines() == [
        "error: --pending and --status cannot be combined (--pending is --status pending)"
    ]


def test_the_console_script_in_a_terminal_approves_one_and_quits(
    demo: Any, database_url: str, conn: psycopg.Connection[Any]
) -> None:
    pexpect = pytest.importorskip("pexpect")
    first = queue_order(conn)[0][0]
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="160", LINES="45")
    child = pexpect.spawn(
        str(CONSOLE_SCRIPT),
        ["--database-url", database_url, "--as", ANA, "review", "queue", "-p", "Loans core"],
        env=env,
        dimensions=(45, 160),
        timeout=30,
        encoding="utf-8",
    )
    try:
        child.expect("approve")  # the footer: the app is up
        child.expect("kept")  # the detail pane: "version 1 (1 version kept)"
        child.send("a")
        _until(lambda: rule_row(conn, first)[0] == "approved")
        child.send("q")
        child.expect("review queue: 1 approved, 0 rejected, 0 clarified, 1 skipped")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert rule_row(conn, first)[::2] == ("approved", ANA)


def _until(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
