"""NO_COLOR and CLICOLOR_FORCE: CLICOLOR_FORCE forces colour into a pipe, never the table
format; NO_COLOR wins over it."""

from __future__ import annotations

from typing import Any

import pytest

ESCAPE = "\x1b["


@pytest.fixture
def colour_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR")  # conftest sets it for every other test


def test_a_piped_table_has_no_colour_by_default(cli: Any, colour_allowed: None) -> None:
    result = cli("config", "show", "--format", "table")
    assert result.exit_code == 0 and "database_url" in result.stdout
    assert ESCAPE not in result.stdout


def test_clicolor_force_colours_a_piped_table(
    cli: Any, colour_allowed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLICOLOR_FORCE", "1")
    assert ESCAPE in cli("config", "show", "--format", "table").stdout
    monkeypatch.setenv("CLICOLOR_FORCE", "0")
    assert ESCAPE not in cli("config", "show", "--format", "table").stdout


def test_clicolor_force_does_not_change_the_piped_format(
    cli: Any, colour_allowed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLICOLOR_FORCE", "1")
    piped = cli("config", "show").stdout
    assert piped.splitlines()[0] == "profile\t\tdefault: none"
    assert ESCAPE not in piped


def test_no_color_wins_over_clicolor_force(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("CLICOLOR_FORCE", "1")
    table = cli("config", "show", "--format", "table").stdout
    assert "database_url" in table and ESCAPE not in table
