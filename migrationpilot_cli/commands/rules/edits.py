"""`rules edit|revalidate`: a correction by hand, and the check against re-imported source."""

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

import typer

from migrationpilot_cli import validation
from migrationpilot_cli.db.connect import transaction
from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.options import OrgOption, ProjectOption, RuleIdArgument, examples
from migrationpilot_cli.output import (
    FieldsOption,
    FormatOption,
    HeaderOption,
    QuietOption,
    listing,
    notice,
    render,
    render_record,
    warning,
)
from migrationpilot_cli.queries import projects, resolve_ref, rules
from migrationpilot_cli.vocabulary import RuleCategory

app = typer.Typer()

_CONFIDENCE_STEP = Decimal("0.001")  # numeric(4,3)


@app.command(
    epilog=examples(
        'migrationpilot rules edit 3 --formula "interest = balance * rate / 12" \\',
        '  --reason "the analyzer dropped the division"',
    )
)
def edit(
    ctx: typer.Context,
    rule_ref: RuleIdArgument,
    reason: Annotated[
        str, typer.Option("--reason", help="Why: recorded with the new version and the audit.")
    ],
    name: Annotated[str | None, typer.Option("--name", show_default=False)] = None,
    description: Annotated[
        str | None,
        typer.Option("--description", help="What the rule is about.", show_default=False),
    ] = None,
    logic: Annotated[
        str | None,
        typer.Option("--logic", help="What the rule does, in words.", show_default=False),
    ] = None,
    formula: Annotated[
        str | None, typer.Option("--formula", help="An empty value clears it.", show_default=False)
    ] = None,
    confidence: Annotated[
        float | None, typer.Option("--confidence", help="0..1.", show_default=False)
    ] = None,
    category: Annotated[RuleCategory | None, typer.Option("--category", show_default=False)] = None,
    fmt: FormatOption = None,
) -> None:
    """Correct a rule by hand: a new version, with your reason.

    Values equal to the current ones change nothing (no new version). An approved or rejected
    rule goes back to pending review: the review was of the content you changed (the database
    does this for every client, and the previous version keeps the review)."""
    from migrationpilot_cli.queries import rule_edits

    why = validation.text(reason, "--reason", max_length=None)
    wanted = _edits(name, description, logic, formula, confidence, category)
    ref = validation.one_id(rule_ref)
    with transaction(ctx.obj, requires=rules.EDIT) as conn:
        rule_id = resolve_ref(conn, "business_rules", ref)
        projects.require_role(conn, rules.EDIT, rule_ids=[rule_id])
        before = rule_edits.lock(conn, rule_id)
        changes = {field: value for field, value in wanted.items() if before[field] != value}
        after = before
        if changes:
            rule_edits.set_change_reason(conn, why)
            after = rule_edits.update(conn, rule_id, changes)
        # review_status too: the database reopens a reviewed rule whose content changed.
        changed = {
            field: {"from": before[field], "to": after[field]}
            for field in (*wanted, "review_status")
            if before[field] != after[field]
        }
    if "review_status" in changed:
        warning(
            f"rule {rule_id.hex[:8]} was {before['review_status']}; your change puts it back to"
            " pending review"
        )
    outcome = "updated" if after["version"] != before["version"] else "unchanged"
    render_record(
        {"id": rule_id, "outcome": outcome, "version": after["version"], "changes": changed},
        fmt=fmt,
    )


def _edits(
    name: str | None,
    description: str | None,
    logic: str | None,
    formula: str | None,
    confidence: float | None,
    category: RuleCategory | None,
) -> dict[str, Any]:
    """The fields the user asked to set, checked and in their stored form."""
    wanted: dict[str, Any] = {}
    for field, value, longest in (
        ("name", name, validation.NAME_LENGTH),
        ("description", description, None),
        ("logic", logic, None),
    ):
        if value is not None:  # a rule always has these: they cannot be cleared
            wanted[field] = validation.text(value, f"--{field}", max_length=longest)
    if formula is not None:
        wanted["formula"] = formula.strip() or None  # an empty value clears the formula
    if confidence is not None:
        checked = validation.confidence(confidence, "--confidence")
        assert checked is not None
        wanted["confidence"] = checked.quantize(_CONFIDENCE_STEP, rounding=ROUND_HALF_UP)
    if category is not None:
        wanted["category"] = category.value
    if not wanted:
        raise BadInput(
            "nothing to change: give --name, --description, --logic, --formula, --confidence"
            " or --category"
        )
    return wanted


@app.command(
    epilog=examples(
        'migrationpilot files import ./legacy -p "Loans core" \\',
        '  && migrationpilot rules revalidate -p "Loans core"',
    )
)
@listing(rules.REVALIDATE_COLUMNS)
def revalidate(
    ctx: typer.Context,
    project: ProjectOption,
    org: OrgOption = None,
    fmt: FormatOption = None,
    quiet: QuietOption = False,
    fields: FieldsOption = None,
    header: HeaderOption = None,
) -> None:
    """After a source re-import, flag and list the rules whose source lines changed.

    Each rule whose lines changed or vanished goes to needs_clarification, with an automatic
    comment. Rules already flagged for the same reason are left alone."""
    from migrationpilot_cli.queries import rule_edits

    with transaction(ctx.obj, requires=rules.EDIT) as conn:
        found = projects.resolve(conn, project, org, requires=rules.EDIT)
        flagged, counts = rule_edits.revalidate(conn, found["id"])
    notice(
        f"{counts['checked']} rules checked, {counts['flagged']} flagged,"
        f" {counts['already_flagged']} already flagged"
    )
    render(
        flagged,
        rules.REVALIDATE_COLUMNS,
        fmt=fmt,
        quiet=quiet,
        fields=fields,
        header=header,
        title=f"Rules of {found['name']} whose source changed",
    )
