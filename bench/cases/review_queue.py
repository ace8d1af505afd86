"""review queue: the reviewer's workbench run headless (Textual's run_test) on the biggest
project's pending rules: open it, approve DECISIONS rules one key each, quit; against the
`rules list` a reviewer reads the same queue with today.

Run on its own, `python -m bench.cases.review_queue URL EMAIL PROJECT [DECISIONS]` prints the
figures the issue asks for: time to the first screen, and per decision (wall and database).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from bench.data import REVIEWER, Context
from bench.measure import MP, PYTHON, Case, Command, case
from bench.server import sql_rows

NAME = "review queue"
DECISIONS = 10


def build(ctx: Context) -> Case:
    project = str(ctx.target.project_id)
    first = [
        row[0]
        for row in sql_rows(
            ctx.url,
            "SELECT id FROM business_rules WHERE project_id = %s AND review_status = 'pending'"
            " ORDER BY confidence DESC, id LIMIT %s",
            (ctx.target.project_id, DECISIONS),
        )
    ]

    def reset() -> None:  # the same rules are pending again before every run
        sql_rows(
            ctx.url,
            "UPDATE business_rules SET review_status = 'pending', reviewed_by = NULL,"
            " reviewed_at = NULL, review_comments = NULL WHERE id = ANY(%s)",
            (first,),
        )

    ours = [PYTHON, "-m", "bench.cases.review_queue", ctx.url, REVIEWER, project]
    listing = [MP, "--database-url", ctx.url, "rules", "list", "--pending", "--project", project]
    return case(
        NAME,
        Command([*ours, str(DECISIONS)], setup=reset),
        Command([*listing, "--limit", "100", "--format", "tsv"]),
        f"review queue, headless: open, {DECISIONS} approvals, quit",
        "migrationpilot rules list --pending --project P --limit 100",
        "report (first screen < 1 s, a decision < 50 ms of database time: see the module)",
    )


def measure(url: str, email: str, project: str, decisions: int) -> dict[str, Any]:
    """Time to the first screen and per decision, in one headless session."""
    from migrationpilot_cli.settings import build_settings
    from migrationpilot_cli.tui.app import ReviewQueue
    from migrationpilot_cli.tui.session import open_session

    filters = dict.fromkeys(
        ("category", "min_confidence", "max_confidence", "source_file", "search")
    ) | {"status": "pending", "sort": "-confidence"}
    started = time.perf_counter()
    session = open_session(build_settings(url, email, False), filters, project, None)
    database: list[float] = []
    decide = session.decide

    def timed_decide(*args: Any) -> int:
        began = time.perf_counter()
        try:
            return decide(*args)
        finally:
            database.append(time.perf_counter() - began)

    session.decide = timed_decide  # type: ignore[method-assign]
    app = ReviewQueue(session)
    figures: dict[str, Any] = {}

    async def run() -> None:
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            figures["first_screen_s"] = time.perf_counter() - started
            walls = []
            for _ in range(decisions):
                began = time.perf_counter()
                await pilot.press("a")
                await pilot.pause()
                walls.append(time.perf_counter() - began)
            figures["decision_wall_ms"] = 1000 * statistics.median(walls)
            await pilot.press("q")

    try:
        asyncio.run(run())
    finally:
        session.conn.close()
    figures["decision_database_ms"] = 1000 * statistics.median(database)
    figures["rules_in_queue"] = session.total
    figures["summary"] = session.summary()
    return figures


if __name__ == "__main__":
    url, email, project, *rest = sys.argv[1:]
    found = measure(url, email, project, int(rest[0]) if rest else DECISIONS)
    print(
        f"review queue ({found['rules_in_queue']:,} pending): first screen"
        f" {found['first_screen_s']:.3f} s; per decision {found['decision_wall_ms']:.1f} ms"
        f" ({found['decision_database_ms']:.1f} ms in the database); {found['summary']}",
        file=sys.stderr,
    )
