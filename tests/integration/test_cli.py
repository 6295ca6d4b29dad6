"""The command line as a user meets it: documented options exist, bad options fail fast and cleanly."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import URL, create_engine, make_url
from sqlalchemy.exc import OperationalError

from fakewatch.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _documentation() -> str:
    """The README and every page of the docs site."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


def _options(command: click.Command) -> set[str]:
    found = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    if isinstance(command, click.Group):
        for child in command.commands.values():
            found |= _options(child)
    return found


def _mentions(text: str) -> list[tuple[str, str, str]]:
    """(command, the text that goes with it, the line) for every `fakewatch COMMAND ...` mention."""
    mentions = []
    for line in text.splitlines():
        row = re.match(r"\| `fakewatch ([a-z]+(?:-[a-z]+)*)", line)
        if row:  # a row of the command table: every option in the row belongs to its command
            mentions.append((row.group(1), line, line))
            continue
        for match in re.finditer(r"fakewatch ([a-z]+(?:-[a-z]+)*)([^`#]*)", line):
            mentions.append((match.group(1), match.group(2), line))
    return mentions


def test_every_option_the_docs_name_exists() -> None:
    mentions = _mentions(_documentation())
    checked = 0
    for name, text, line in mentions:
        if name not in cli.commands:
            continue  # prose such as "fakewatch finds ..."
        known = _options(cli.commands[name])  # global options go before the command, so they do not count
        for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text):
            assert option in known, f"the docs name `fakewatch {name} ... {option}`, which does not exist: {line}"
            checked += 1
    assert checked > 50  # the parser really found the command table and the examples


def test_every_command_is_documented() -> None:
    documented = {match[0] for match in _mentions(_documentation())}
    assert set(cli.commands) <= documented


def test_bad_training_options_fail_before_any_data_is_read(tmp_path: Path) -> None:
    empty = tmp_path / "no-images-here"
    empty.mkdir()  # not a labelled folder: reading it would fail with another message
    result = CliRunner().invoke(cli, ["train", str(empty), "--blocks", "x,y"],
                                env={"FAKEWATCH_HOME": str(tmp_path / "home")}, obj={})
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["fakewatch: error: --blocks must be a number or three "
                                                  "comma-separated numbers, not 'x,y'"]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_errors_from_sub_groups_are_one_line_messages(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["classifiers", "show", "no-such-version"],
                                env={"FAKEWATCH_HOME": str(tmp_path / "home")}, obj={})
    assert result.exit_code == 2
    assert result.output.startswith("fakewatch: error: no classifier version or directory 'no-such-version'")
    assert "Traceback" not in result.output


def _postgres_or_skip() -> URL:
    from tests.integration.services import POSTGRES_URL

    url = make_url(POSTGRES_URL)
    try:
        with create_engine(url).connect():
            pass
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} ({exc.orig}); start it or set "
                    f"FAKEWATCH_TEST_POSTGRES_URL")
    return url


@pytest.mark.parametrize("command", [["stats"], ["db", "upgrade"]])
def test_a_missing_postgres_database_or_role_is_named(tmp_path: Path, command: list[str]) -> None:
    url = _postgres_or_skip()
    missing = f"fakewatch_absent_{uuid.uuid4().hex[:8]}"
    env = {"FAKEWATCH_HOME": str(tmp_path / "home"), "FAKEWATCH_CONFIG": "", "FAKEWATCH_BROKER_URL": ""}
    for changed, expected in ((url.set(database=missing), f"database '{missing}' does not exist"),
                              (url.set(username=missing), f"role '{missing}' does not exist")):
        result = CliRunner().invoke(cli, command, obj={}, env={
            **env, "FAKEWATCH_DATABASE_URL": changed.render_as_string(hide_password=False)})
        assert result.exit_code == 2
        (line,) = result.output.splitlines()
        assert line.startswith(f"fakewatch: error: {expected}") and "create it" in line
        assert "schema is not current" not in line


def test_classifiers_show_prints_a_summary_and_the_card_with_json(tmp_path: Path) -> None:
    env = {"FAKEWATCH_HOME": str(tmp_path / "home"), "FAKEWATCH_CONFIG": "", "FAKEWATCH_CLASSIFIER": ""}
    summary = CliRunner().invoke(cli, ["classifiers", "show", "--domain", "thumbnail"], env=env, obj={}).output
    lines = summary.splitlines()
    assert lines[0] == "resnet-20261123-011456  (active)" and len(lines) < 20
    assert any(line.split()[:2] == ["test", "figures"] for line in lines)
    card = CliRunner().invoke(cli, ["classifiers", "show", "--domain", "thumbnail", "--json"], env=env, obj={}).output
    assert json.loads(card)["version"] == "resnet-20261123-011456"
