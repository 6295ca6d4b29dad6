"""Stored and shown forms of file names, CSV cells and masked secrets."""

from __future__ import annotations

import logging
import os

import pytest

from fakewatch.names import csv_cell, shown, to_fs, to_stored
from fakewatch.redact import SafeFormatter, mask_secrets, mask_url

HOSTILE = [
    "plain/photo.jpg",
    os.fsdecode(b"/old/x\xff.jpg"),
    os.fsdecode(b"/old/\xc3(\xe9t\xe9.jpg"),
    "/back\\slash\\xff.jpg",  # a valid name that looks like an escape
    "/ctl/\x1b]0;owned\x07\x1b[2J\n\t.jpg",
    "/ünïcödé/фото.jpg",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_stored_form_is_lossless_and_encodable(path: str) -> None:
    stored = to_stored(path)
    stored.encode("utf-8")  # what every database driver needs
    assert to_fs(stored) == path
    assert os.fsencode(to_fs(stored)) == os.fsencode(path)


def test_stored_forms_never_collide() -> None:
    assert len({to_stored(path) for path in HOSTILE}) == len(HOSTILE)
    assert to_stored(os.fsdecode(b"x\xff")) != to_stored("x\\xff")


def test_shown_escapes_every_control_character() -> None:
    text = shown("/ctl/\x1b]0;owned\x07\x1b[2J\n\t\r\x9b\u202e.jpg" + os.fsdecode(b"\xff"))
    assert text == "/ctl/\\x1b]0;owned\\x07\\x1b[2J\\n\\t\\r\\x9b\\u202e.jpg\\xff"
    assert text.isprintable()
    assert shown("ünïcödé фото.jpg") == "ünïcödé фото.jpg"


@pytest.mark.parametrize("cell", ["=cmd|' /C calc'!A0", "+1", "-1+1", "@SUM(1)", "\tx", "\rx"])
def test_csv_cells_that_start_a_formula_are_neutralised(cell: str) -> None:
    assert csv_cell(cell) == "'" + cell
    assert csv_cell("photo.jpg") == "photo.jpg" and csv_cell(-1.5) == -1.5 and csv_cell(None) is None


def test_passwords_are_masked_in_urls_and_messages() -> None:
    assert mask_url("postgresql+psycopg://app:s3cr3t@db:5432/fw") == "postgresql+psycopg://app:***@db:5432/fw"
    assert mask_url("redis://:s3cr3t@localhost:6379/0") == "redis://:***@localhost:6379/0"
    assert mask_url("redis://localhost:6379/0") == "redis://localhost:6379/0"
    message = "cannot reach amqp://guest:s3cr3t@rabbit:5672// (and sqlite:///x.db?password=s3cr3t)"
    assert "s3cr3t" not in mask_secrets(message)


def test_log_lines_are_masked_and_escaped() -> None:
    formatter = SafeFormatter("%(message)s")
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "cannot read %s via %s", (
        "/in/\x1b[2Jevil.jpg", "redis://:s3cr3t@h:6379/0"), None)
    line = formatter.format(record)
    assert line == "cannot read /in/\\x1b[2Jevil.jpg via redis://:***@h:6379/0"
