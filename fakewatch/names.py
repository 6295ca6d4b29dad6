"""File names, as stored and as shown: any name the file system allows survives the database and the terminal.

A POSIX file name is bytes, not text; Python hands undecodable bytes over as lone surrogates, which no
database driver accepts. The database therefore holds a *stored form* that is plain, lossless text:

- a name that is valid UTF-8 and holds no backslash is stored as it is (nearly every name);
- any other name is escaped: a backslash becomes ``\\\\`` and each undecodable byte ``\\xNN``.

Clean names never contain a backslash and escaped names always do, so the two never collide and
:func:`to_fs` restores the exact bytes. :func:`shown` makes any text safe to print: control characters,
escape sequences, newlines and tabs come out as visible escapes, so a file name cannot drive a terminal.
"""

from __future__ import annotations

import os
import re

_UNDECODABLE = re.compile(r"[\udc80-\udcff]")
_ESCAPED = re.compile(r"\\(\\|x[0-9a-f]{2})")
# C0 and C1 controls, DEL, and the bidirectional/line-separator controls that can reorder what is shown
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def to_stored(path: str) -> str:
    """The database's text for a file system path (which may hold surrogate-escaped bytes)."""
    if "\\" not in path and not _UNDECODABLE.search(path):
        return path
    escaped = path.replace("\\", "\\\\")
    return _UNDECODABLE.sub(lambda match: f"\\x{ord(match.group()) - 0xDC00:02x}", escaped)


def to_fs(stored: str) -> str:
    """The file system path for a stored name: the exact bytes, as Python's ``os`` functions take them."""
    if "\\" not in stored:
        return stored
    raw = bytearray()
    position = 0
    for match in _ESCAPED.finditer(stored):
        raw += stored[position:match.start()].encode("utf-8", "surrogateescape")
        token = match.group(1)
        raw += b"\\" if token == "\\" else bytes([int(token[1:], 16)])
        position = match.end()
    raw += stored[position:].encode("utf-8", "surrogateescape")
    return os.fsdecode(bytes(raw))


def shown(text: object) -> str:
    """``text`` safe for a terminal or a log line: every control character as a visible escape.

    Surrogate-escaped bytes (an undecodable name not yet stored) come out as ``\\xNN`` too."""
    value = str(text)
    value = _UNDECODABLE.sub(lambda match: f"\\x{ord(match.group()) - 0xDC00:02x}", value)
    return _UNPRINTABLE.sub(_escape_control, value)


def _escape_control(match: re.Match[str]) -> str:
    character = match.group()
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
    if character in named:
        return named[character]
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run as a formula: text starting with = + - @ tab or CR gets a
    leading apostrophe (OWASP's advice for CSV injection). Numbers and None pass through."""
    if isinstance(value, str) and value.startswith(CSV_TRIGGERS):
        return "'" + value
    return value
