"""Finding files: every candidate under the named paths, depth first and streaming, in growing chunks."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fakewatch.intake.filters import IMAGE_EXTENSIONS, FileFilter

log = logging.getLogger(__name__)


def walk(paths: Iterable[str | Path], file_filter: FileFilter) -> Iterator[str]:
    """Every candidate file under ``paths``, depth first, streaming. Directory symlinks are not followed
    (no loops); file symlinks are yielded, so a broken or looping one is recorded as unreadable."""
    for root in paths:
        root = os.path.abspath(root)
        if not os.path.isdir(root):
            if file_filter.accepts(root):
                yield root
            continue
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as entries:
                    children = sorted(entries, key=lambda entry: entry.name)
            except OSError as exc:
                log.warning("cannot list %s: %s", folder, exc)
                continue
            for entry in reversed(children):
                if entry.is_dir(follow_symlinks=False):
                    if not file_filter.ignored_dir(entry.name):
                        stack.append(entry.path)
                        if entry.name.lower().endswith(IMAGE_EXTENSIONS) and file_filter.accepts(entry.path):
                            yield entry.path  # a folder named like an image: recorded as kind "directory"
                elif _is_candidate(entry) and file_filter.accepts(entry.path):
                    yield entry.path


def _is_candidate(entry: os.DirEntry[str]) -> bool:
    """Everything but links to folders: regular files, FIFOs, sockets and devices (recorded by kind, never
    read), and file links, broken and looping ones included. Links to folders are not followed (no loops)."""
    if entry.is_symlink():
        return not os.path.isdir(entry.path)  # isdir is False for broken and looping links
    return True


def real_roots(paths: Iterable[str | Path]) -> tuple[str, ...]:
    """The folders (and files named on their own) that links may point into, with links resolved."""
    return tuple(os.path.realpath(path) for path in paths)


def chunks(items: Iterable[Any], size: int, first: int | None = None) -> Iterator[list[Any]]:
    """``items`` in lists of ``size``; with ``first``, the lists start at that length and double up to ``size``."""
    wanted = min(size, first) if first else size
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= wanted:
            yield chunk
            chunk = []
            wanted = min(size, wanted * 2)
    if chunk:
        yield chunk
