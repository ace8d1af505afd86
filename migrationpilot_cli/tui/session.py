"""The review queue's state without its screen: the rules loaded so far, one page at a time,
the decisions of this session and how to undo them. Every read and every decision is its own
short transaction as the acting user, through the same queries as `rules list` and `review
approve`; no SQL here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from migrationpilot_cli.db.connect import connect, within
from migrationpilot_cli.queries import projects, reviews, rules

if TYPE_CHECKING:
    from migrationpilot_cli.db.connect import Connection
    from migrationpilot_cli.settings import Settings

# Rules fetched per round trip: a screenful or two. The next page is read as the cursor
# nears the end of what is loaded, so a queue of 100,000 rules costs what its first page does.
PAGE = 100
# Lines of source shown above and below a rule's own.
CONTEXT_LINES = 3
# The verb that restores a status, for undoing a decision (pending is a reopen).
VERB_OF = {status: verb for verb, status in reviews.STATUS_OF.items()}


@dataclass
class Decision:
    """One decision of this session, with what it replaced (for `u`)."""

    rule_id: UUID
    verb: str
    version: int  # the rule's version after the decision
    before_status: str
    before_comment: str | None


@dataclass
class ReviewSession:
    """One reviewer's pass over a filtered queue, on one connection."""

    settings: Settings
    conn: Connection
    filters: dict[str, Any]
    scope: dict[str, Any]
    title: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    exhausted: bool = False
    decisions: list[Decision] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)
    seen: set[UUID] = field(default_factory=set)

    def reload(self, **changes: Any) -> None:
        """Start the queue over with some filters changed (``search``, ``category``)."""
        self.filters = self.filters | changes
        with within(self.conn, self.settings) as conn:
            self.total = rules.count_rules(conn, **self.scope, **self.filters)
            self.rows = rules.list_rules(conn, **self.scope, **self.filters, limit=PAGE)
        self.exhausted = len(self.rows) < PAGE

    def load_more(self) -> list[dict[str, Any]]:
        """The next page, appended to ``rows`` (empty at the end of the queue)."""
        if self.exhausted or not self.rows:
            return []
        with within(self.conn, self.settings) as conn:
            page = rules.list_rules(
                conn, **self.scope, **self.filters, limit=PAGE, after=self.rows[-1]
            )
        self.exhausted = len(page) < PAGE
        self.rows.extend(page)
        return page

    def rule(self, index: int) -> dict[str, Any]:
        """The rule at ``index`` as the reviewer reads it, fresh from the database."""
        rule_id = self.rows[index]["id"]
        with within(self.conn, self.settings) as conn:
            found = rules.with_source(conn, rule_id, CONTEXT_LINES)
        self.seen.add(rule_id)
        self.rows[index] |= {key: found[key] for key in ("review_status", "version", "name")}
        return found

    def decide(self, shown: dict[str, Any], verb: str, comment: str | None) -> int:
        """Approve, reject or clarify the rule as ``shown`` (refused with ChangedMeanwhile if
        it is no longer at that version); returns its new version."""
        with within(self.conn, self.settings) as conn:
            (outcome,) = reviews.review(
                conn, [shown["id"]], verb=verb, comment=comment, expect_version=shown["version"]
            )
        self.decisions.append(
            Decision(
                shown["id"],
                verb,
                outcome["version"],
                shown["review_status"],
                shown["review_comments"],
            )
        )
        self.tally[verb] += 1
        return int(outcome["version"])

    def undo(self) -> Decision | None:
        """Undo the last decision still standing: a new version with the status before it.
        Refused (ChangedMeanwhile) when the rule changed since; the decision is then kept."""
        if not self.decisions:
            return None
        last = self.decisions[-1]
        with within(self.conn, self.settings) as conn:
            if last.before_status == "pending":
                reviews.reopen(
                    conn, last.rule_id, expect_version=last.version, reason=f"undo {last.verb}"
                )
            else:
                reviews.review(
                    conn,
                    [last.rule_id],
                    verb=VERB_OF[last.before_status],
                    comment=last.before_comment,
                    expect_version=last.version,
                )
        self.decisions.pop()
        self.tally[last.verb] -= 1
        return last

    def changes(self, rule_id: UUID, since: int, now: int) -> list[str]:
        """The fields that changed between two versions of a rule (not the number itself)."""
        with within(self.conn, self.settings) as conn:
            found = rules.diff(conn, rule_id, since, now)
        return [row["field"] for row in found if row["field"] != "version"]

    def summary(self) -> str:
        decided = {decision.rule_id for decision in self.decisions}
        return (
            f"review queue: {self.tally['approve']} approved, {self.tally['reject']} rejected,"
            f" {self.tally['clarify']} clarified, {len(self.seen - decided)} skipped"
        )


def open_session(
    settings: Settings, filters: dict[str, Any], project: str | None, org: str | None
) -> ReviewSession:
    """Connect, find the project and read the queue's first page: every failure here (no
    database, no such project) happens before the screen opens, as the one line it is."""
    conn = connect(settings)
    try:
        with within(conn, settings) as tx:
            found = projects.resolve(tx, project, org) if project else None
            where = rules.scope(tx, found, org)
        session = ReviewSession(
            settings, conn, filters, where, found["name"] if found else "every project"
        )
        session.reload()
    except BaseException:
        conn.close()
        raise
    return session


def describe_filters(filters: dict[str, Any]) -> str:
    """The position line's account of the queue: ``pending, confidence >= 0.90``."""
    parts = [filters["status"] or "any status"]
    low, high = filters["min_confidence"], filters["max_confidence"]
    if low is not None:
        parts.append(f"confidence >= {_two_places(low)}")
    if high is not None:
        parts.append(f"confidence <= {_two_places(high)}")
    if filters["category"]:
        parts.append(f"category {filters['category']}")
    if filters["source_file"]:
        parts.append(f"file {filters['source_file']}")
    if filters["search"]:
        parts.append(f"search {filters['search']!r}")
    return ", ".join(parts)


def _two_places(value: Decimal) -> str:
    return f"{value:.2f}" if value == round(value, 2) else str(value)
