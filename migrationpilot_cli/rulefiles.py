"""Business-rule documents: an analyzer's output checked into import records, and the review
report written for business owners.

Pure logic, no I/O: ``jsonrecords`` reads the JSON array or JSON Lines text and locates every
record (``rules.jsonl line 37``, ``rules.json [12]``); ``checked`` checks each record's
fields as it streams by, so that a bad record fails the whole import naming its location and
the field, and nothing is kept. What needs all the records (duplicates) or what only the
database knows (the source file exists in the project, the line range lies inside it) is
checked there, set-based, by ``queries.rule_import``.

A record's fields:

* required: ``name``, ``description``, ``category`` (a ``rule_category``), ``logic`` (what
  the rule does, in words: what a reviewer approves), ``confidence`` (a number in 0..1),
  ``source_file`` (a path of the project's stored sources), ``source_start_line`` and
  ``source_end_line`` (1-based, inclusive, end >= start);
* optional: ``formula`` and ``source_code`` (text or null; the source code is cut from the
  stored file when absent) and ``inputs``, ``outputs`` (arrays, default empty).

Any other field is an error, so that a typo (``confidance``) is not silently dropped. The
review state is the reviewers' business: an import never sets it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from migrationpilot_cli.errors import BadInput
from migrationpilot_cli.jsonrecords import Record, dumps
from migrationpilot_cli.vocabulary import ReviewStatus, RuleCategory

REQUIRED_FIELDS = (
    "name",
    "description",
    "category",
    "logic",
    "confidence",
    "source_file",
    "source_start_line",
    "source_end_line",
)
TEXT_FIELDS = ("formula", "source_code")
ARRAY_FIELDS = ("inputs", "outputs")
FIELDS = REQUIRED_FIELDS + TEXT_FIELDS + ARRAY_FIELDS
_KNOWN_FIELDS = frozenset(FIELDS)

# Fields an analyzer might be tempted to send that belong to the review workflow.
_REVIEW_FIELDS = frozenset({"review_status", "reviewed_by", "reviewed_at", "review_comments"})
_MAX_LINE = 2**31 - 1  # PostgreSQL int
_NAME_LENGTH = 255  # business_rules.name varchar(255)
_PATH_LENGTH = 500  # business_rules.source_file varchar(500)
_CATEGORIES = tuple(category.value for category in RuleCategory)

# Builds the error for one record: its location, then the message.
_Fail = Callable[[str], BadInput]


# Not frozen: a frozen dataclass sets every field through object.__setattr__, which costs an
# import of 100,000 records a third of a second. Nothing changes a record once validated.
@dataclass(slots=True)
class RuleRecord:
    """One validated import record, with where it came from for later error messages."""

    location: str
    name: str
    category: str
    confidence: Decimal
    source_file: str
    source_start_line: int
    source_end_line: int
    description: str = ""
    logic: str = ""
    formula: str | None = None
    source_code: str | None = None
    inputs: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)


def checked(records: Iterable[Record]) -> Iterator[RuleRecord]:
    """Every record checked as it comes; BadInput (exit 2) for the first bad one, naming its
    location and field. What needs the whole input (no records at all, the same rule twice)
    is checked by ``queries.rule_import`` once the records are staged: a million records are
    never held here."""
    for location, values in records:
        yield _record(location, values)


def within_source(location: str) -> str:
    """``line 12`` or ``[3]``: a location without the source's name, which is said already."""
    if " line " in location:
        return "line " + location.rsplit(" line ", 1)[1]
    return "[" + location.rsplit(" [", 1)[1]


def _record(location: str, values: Mapping[str, Any]) -> RuleRecord:
    def fail(message: str) -> BadInput:
        return BadInput(f"{location}: {message}")

    _check_fields(values, fail)
    start = _line_number(values["source_start_line"], "source_start_line", fail)
    end = _line_number(values["source_end_line"], "source_end_line", fail)
    if end < start:
        raise fail(f"source_end_line {end} is before source_start_line {start}")
    texts = {name: _optional_text(values.get(name), name, fail) for name in TEXT_FIELDS}
    return RuleRecord(
        location=location,
        name=_required_text(values["name"], "name", fail, _NAME_LENGTH).strip(),
        category=_category(values["category"], fail),
        confidence=_confidence(values["confidence"], fail),
        source_file=_required_text(values["source_file"], "source_file", fail, _PATH_LENGTH),
        source_start_line=start,
        source_end_line=end,
        description=_required_text(values["description"], "description", fail),
        logic=_required_text(values["logic"], "logic", fail),
        formula=texts["formula"],
        source_code=texts["source_code"],
        inputs=_optional_array(values.get("inputs"), "inputs", fail),
        outputs=_optional_array(values.get("outputs"), "outputs", fail),
    )


def _check_fields(values: Mapping[str, Any], fail: _Fail) -> None:
    if not values.keys() <= _KNOWN_FIELDS:
        name = next(name for name in values if name not in _KNOWN_FIELDS)
        if name in _REVIEW_FIELDS:
            raise fail(f"{name} is set by `migrationpilot review`, not by an import")
        guess = difflib.get_close_matches(name, FIELDS, n=1)
        hint = f"did you mean {guess[0]!r}?" if guess else f"expected {', '.join(FIELDS)}"
        raise fail(f"unknown field {name!r} ({hint})")
    missing = [name for name in REQUIRED_FIELDS if values.get(name) is None]
    if missing:
        raise fail(f"missing {', '.join(missing)}")


def _shown(value: Any) -> str:
    """A value as the user wrote it, short enough for a one-line message."""
    text = repr(value) if isinstance(value, str) else dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _required_text(value: Any, name: str, fail: _Fail, longest: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{name} {_shown(value)} must be a non-empty string")
    if longest is not None and len(value) > longest:
        raise fail(f"{name} is too long: {len(value)} characters, at most {longest}")
    return value


def _optional_text(value: Any, name: str, fail: _Fail) -> str | None:
    if value is not None and not isinstance(value, str):
        raise fail(f"{name} {_shown(value)} must be a string or null")
    return value


def _optional_array(value: Any, name: str, fail: _Fail) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(f"{name} {_shown(value)} must be an array")
    return value


def _category(value: Any, fail: _Fail) -> str:
    if value not in _CATEGORIES:
        raise fail(f"category {_shown(value)} is not one of {', '.join(_CATEGORIES)}")
    return str(value)


def _confidence(value: Any, fail: _Fail) -> Decimal:
    # bool is an int in Python, but `true` is not a confidence.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise fail(f"confidence {_shown(value)} is not a number")
    if not 0 <= value <= 1:
        raise fail(f"confidence {_shown(value)} is not between 0 and 1")
    return Decimal(value)


def _line_number(value: Any, name: str, fail: _Fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_LINE:
        raise fail(f"{name} {_shown(value)} must be a positive integer")
    return value


# ---------------------------------------------------------------------------------------------
# The review report (`rules export --format markdown`)
# ---------------------------------------------------------------------------------------------

_STATUSES = tuple(status.value for status in ReviewStatus)


def review_report(
    project: Mapping[str, Any],
    groups: Sequence[Mapping[str, Any]],
    rules: Iterable[Mapping[str, Any]],
    exported_at: dt.datetime,
) -> Iterator[str]:
    """A Markdown review report for business owners, piece by piece: a summary table by
    category, then one section per category with every rule's name, confidence, review
    state, logic, formula and source location.

    ``groups`` are the project's rules counted by category and review status (rows of
    ``queries.rules.export_groups``: category, review_status, rules, and confidence, their
    sum); ``rules`` are rows of ``queries.rules.export``, in report order (by category), and
    may be a stream: the report never holds them."""
    counts = _category_counts(groups)
    total = counts["**total**"]
    yield "\n".join(
        [
            f"# Business rules of {_inline(project['name'])}",
            "",
            f"{project['source_language']} to {project['target_language']},"
            f" {total['rules']} rules, exported {exported_at:%Y-%m-%d %H:%M %Z}".rstrip(),
            "",
            *_summary_table(counts),
        ]
    )
    category = None
    for rule in rules:
        if rule["category"] != category:
            category = rule["category"]
            yield f"\n\n## {category.capitalize()} ({counts[category]['rules']})"
        yield "\n\n" + "\n".join(_rule_section(rule))
    yield "\n"


def _category_counts(groups: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each category with rules, in the database's order, then ``**total**``: the rules,
    their number by status, and the sum of their confidence."""
    counts: dict[str, dict[str, Any]] = {}
    for group in groups:
        for name in (group["category"], "**total**"):
            count = counts.setdefault(name, _no_rules())
            count["rules"] += group["rules"]
            count[group["review_status"]] += group["rules"]
            count["confidence"] += group["confidence"]
    order = [*_CATEGORIES, "**total**"]
    return {name: counts[name] for name in order if name in counts} or {"**total**": _no_rules()}


def _no_rules() -> dict[str, Any]:
    return {"rules": 0, "confidence": Decimal(0), **dict.fromkeys(_STATUSES, 0)}


def _summary_table(counts: Mapping[str, Mapping[str, Any]]) -> list[str]:
    header = ["category", "rules", *_STATUSES, "average confidence"]
    lines = [_row(header), _row(["---"] + ["---:"] * (len(header) - 1))]
    for name, count in counts.items():
        average = count["confidence"] / count["rules"] if count["rules"] else None
        shown_average = f"{average:.3f}" if average is not None else "-"
        by_status = [str(count[status]) for status in _STATUSES]
        lines.append(_row([name, str(count["rules"]), *by_status, shown_average]))
    return lines


def _rule_section(rule: Mapping[str, Any]) -> list[str]:
    lines = [f"### {_inline(rule['name'])} (rule {rule['id']})", ""]
    status = rule["review_status"].replace("_", " ")
    if rule["reviewed_by"]:
        status += f" by {rule['reviewed_by']}"
    if rule["reviewed_at"]:
        status += f" on {rule['reviewed_at']:%Y-%m-%d}"
    facts = [
        ("Confidence", f"{rule['confidence']}"),
        ("Review", status),
        ("Reviewer's comment", _inline(rule["review_comments"])),
        ("Source", _source_location(rule)),
        ("Inputs", ", ".join(_code(dumps(item).strip('"')) for item in rule["inputs"])),
        ("Outputs", ", ".join(_code(dumps(item).strip('"')) for item in rule["outputs"])),
    ]
    lines += [f"- **{label}:** {value}" for label, value in facts if value]
    if rule["description"]:
        lines += ["", _inline(rule["description"])]
    if rule["logic"]:
        lines += ["", f"**Logic:** {_inline(rule['logic'])}"]
    if rule["formula"]:
        lines += ["", f"**Formula:** {_code(rule['formula'])}"]
    return lines


def _source_location(rule: Mapping[str, Any]) -> str:
    if not rule["source_file"]:
        return ""
    start, end = rule["source_start_line"], rule["source_end_line"]
    where = f"line {start}" if start == end else f"lines {start}-{end}"
    return f"{_code(rule['source_file'])} {where}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _inline(text: str | None) -> str:
    """Text on one Markdown line: newlines folded, table pipes and HTML escaped."""
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat.replace("|", "\\|").replace("<", "&lt;")


def _code(text: str) -> str:
    """An inline code span that survives backticks in the text (CommonMark: a longer fence)."""
    flat = " ".join(text.split())
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    padding = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{padding}{flat}{padding}{fence}"
