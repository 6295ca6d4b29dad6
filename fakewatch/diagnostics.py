"""What the C image libraries say while decoding one file, captured instead of printed.

libjpeg, libpng and OpenCV write warnings straight to file descriptor 2 ("Corrupt JPEG data: bad Huffman
code", "libpng warning: iCCP: ..."): hundreds of lines across a progress bar, with no file name. While a
decode runs, :func:`captured` points descriptor 2 at a private temporary file and hands back what was
written, so it can be recorded on that file's row. Decodes that capture take a lock (descriptor 2 is
process-wide); a log line another thread writes meanwhile is passed on to the real stderr, not swallowed.

:func:`judge` splits captured lines into damage (the picture was painted from a broken stream: the file
is ``corrupt``) and warnings (recorded as a note; the verdict stands).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_SINK: int | None = None
# messages meaning the decoder filled in what it could not read
DAMAGE = re.compile(r"bad huffman|premature end|huffman table|no image|invalid sos|invalid jpeg|corrupt image|"
                    r"libpng error|too many|unsupported marker|bogus", re.IGNORECASE)
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d")  # fakewatch's own log format: not the decoder's


def _sink() -> int:
    global _SINK
    if _SINK is None:
        handle, name = tempfile.mkstemp(prefix="fakewatch-decoder-")
        os.unlink(name)
        _SINK = handle
    return _SINK


@contextmanager
def captured(lines: list[str]) -> Iterator[None]:
    """Run the block with descriptor 2 redirected; append what the libraries wrote to ``lines``."""
    with _LOCK:
        sys.stderr.flush()
        sink = _sink()
        os.lseek(sink, 0, os.SEEK_SET)
        os.ftruncate(sink, 0)
        saved = os.dup(2)
        os.dup2(sink, 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            size = os.lseek(sink, 0, os.SEEK_CUR)
            text = os.pread(sink, size, 0).decode("utf-8", "replace") if size else ""
    for line in text.splitlines():
        if _LOG_LINE.match(line):
            sys.stderr.write(line + "\n")
        elif line.strip():
            lines.append(line.strip())


def quietly(decode: Callable[[], object], lines: list[str]) -> object:
    """``decode()`` with its library chatter captured into ``lines``."""
    with captured(lines):
        return decode()


def judge(lines: list[str]) -> tuple[str | None, str | None]:
    """(damage, warnings): the first message showing a damaged stream, and the rest joined as a note."""
    if not lines:  # the usual case: the decoder said nothing
        return None, None
    damage = next((line for line in lines if DAMAGE.search(line)), None)
    unique = list(dict.fromkeys(line for line in lines if line != damage))
    return damage, ("; ".join(unique)[:500] or None)
