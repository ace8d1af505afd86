"""bulk approve: `review approve -` of a reviewer's ids on stdin against the same UPDATE through
psql (the database's triggers write the versions and the audit rows for both)."""

from bench.data import REVIEWER, WRITES, Context
from bench.measure import MP, Case, Command, case, scaled_goal
from bench.server import sql_rows

NAME = "bulk approve"

_APPROVE_SQL = """
\\set ON_ERROR_STOP on
BEGIN;
CREATE TEMPORARY TABLE ids (id uuid) ON COMMIT DROP;
GRANT SELECT ON ids TO migrationpilot_app;
\\copy ids FROM '{ids}'
SELECT set_config('app.current_user_id', id::text, true) FROM users WHERE email = '{email}' \\gset
SET LOCAL ROLE migrationpilot_app;
SELECT set_config('app.change_reason', 'review: approve: bulk', true) \\gset
UPDATE business_rules r
SET review_status = 'approved', reviewed_by = (SELECT current_user_id()),
    reviewed_at = now(), review_comments = 'bulk'
WHERE r.id IN (SELECT id FROM ids) AND r.review_status <> 'approved';
COMMIT;
"""


def build(ctx: Context) -> Case:
    url, psql, work, target = ctx.url, ctx.psql, ctx.work, ctx.target
    count = WRITES[ctx.scale]["approve"]
    ids = [
        row[0]
        for row in sql_rows(
            url,
            "SELECT id FROM business_rules WHERE organization_id = %s AND review_status = 'pending'"
            " ORDER BY id LIMIT %s",
            (target.organization_id, count),
        )
    ]
    id_file = work / "ids.txt"
    id_file.write_text("".join(f"{rule_id}\n" for rule_id in ids))
    script = work / "approve.sql"
    script.write_text(_APPROVE_SQL.format(ids=id_file, email=REVIEWER))

    def reset() -> None:  # the same rules are pending again before every run
        sql_rows(
            url,
            "UPDATE business_rules SET review_status = 'pending', reviewed_by = NULL,"
            " reviewed_at = NULL, review_comments = NULL WHERE id = ANY(%s)",
            (ids,),
        )

    ours = Command(
        [
            MP,
            "--database-url",
            url,
            "--as",
            REVIEWER,
            "review",
            "approve",
            "-",
            "--comment",
            "bulk",
        ],
        stdin=id_file,
        setup=reset,
    )
    baseline = Command([psql, "-X", "-q", "-f", str(script), url], setup=reset)
    return case(
        NAME,
        ours,
        baseline,
        f"migrationpilot --as ... review approve - ({len(ids):,} ids on stdin)",
        "the same UPDATE through psql",
        scaled_goal("<= 1.1", len(ids), 10_000, "ids"),
    )
