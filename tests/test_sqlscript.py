"""Splitting migration files into statements: nothing that hides a semicolon may split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from migrationpilot_cli.db.sqlscript import mentions_word, split_statements


def texts(script: str) -> list[str]:
    return [statement.text for statement in split_statements(script)]


def test_plain_statements_and_their_lines() -> None:
    script = "-- header\nCREATE TABLE a (id int);\n\nCREATE TABLE b (\n  id int\n);\nSELECT 1"
    statements = split_statements(script)
    assert [s.text for s in statements] == [
        "CREATE TABLE a (id int);",
        "CREATE TABLE b (\n  id int\n);",
        "SELECT 1",
    ]
    assert [s.line for s in statements] == [2, 4, 7]


def test_semicolons_inside_literals_comments_and_identifiers_do_not_split() -> None:
    script = (
        "INSERT INTO t VALUES ('a;b', 'it''s; fine');\n"
        "SELECT E'back\\';slash';\n"
        'CREATE TABLE "odd;name" (id int);\n'
        "/* a; /* nested; */ still comment; */ SELECT 2;\n"
        "SELECT 3; -- trailing; comment\n"
    )
    assert texts(script) == [
        "INSERT INTO t VALUES ('a;b', 'it''s; fine');",
        "SELECT E'back\\';slash';",
        'CREATE TABLE "odd;name" (id int);',
        "SELECT 2;",
        "SELECT 3;",
    ]


def test_dollar_quoted_bodies_with_and_without_tags() -> None:
    script = (
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;\n"
        "DO $body$ BEGIN PERFORM 'x$$;'; END $body$;\n"
        "SELECT $1;\n"
    )
    assert len(texts(script)) == 3
    assert texts(script)[1].startswith("DO $body$") and texts(script)[1].endswith("$body$;")


def test_sql_standard_function_bodies_stay_whole() -> None:
    script = (
        "CREATE FUNCTION grade(n int) RETURNS text LANGUAGE sql\n"
        "BEGIN ATOMIC\n  SELECT CASE WHEN n > 1 THEN 'a' ELSE 'b' END;\n  SELECT 'c';\nEND;\n"
        "SELECT 1;\n"
    )
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[0].text.endswith("END;")
    assert statements[1].line == 6


def test_comment_only_tail_is_not_a_statement() -> None:
    assert texts("SELECT 1;\n-- the end\n/* really */\n") == ["SELECT 1;"]


def test_concurrently_is_found_only_as_sql() -> None:
    assert mentions_word("CREATE INDEX CONCURRENTLY i ON t (a);", "concurrently")
    assert not mentions_word(
        "-- concurrently\nCOMMENT ON TABLE t IS 'concurrently';", "concurrently"
    )


literal_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(st.lists(literal_text, min_size=1, max_size=6))
def test_any_string_literal_content_keeps_statements_intact(values: list[str]) -> None:
    quoted = ["'" + value.replace("'", "''") + "'" for value in values]
    script = "\n".join(f"SELECT {literal};" for literal in quoted)
    assert texts(script) == [f"SELECT {literal};" for literal in quoted]
