"""Keeping secrets and hostile bytes out of what fakewatch prints and logs.

:func:`mask_url` hides the password in one URL; :func:`mask_secrets` does it for every URL inside a piece
of text (error messages quote URLs); :class:`SafeFormatter` applies both, and the control-character
escaping of :func:`fakewatch.names.shown`, to every log line, so a planted file name or a password in a
setting never reaches a terminal or a log file raw.
"""

from __future__ import annotations

import logging
import re

from fakewatch.names import shown

MASK = "***"
# scheme://user:password@host  ->  the password part; also a password with no user (redis://:pw@host)
_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)(?P<tail>@)")
_QUERY_SECRETS = re.compile(r"(?P<head>[?&](?:password|passwd|pwd|token|secret|api_key|apikey)=)(?P<secret>[^&\s]+)",
                            re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """``text`` with the password of every URL in it (and ``password=``-style query values) masked."""
    text = _CREDENTIALS.sub(lambda match: f"{match['head']}{MASK}{match['tail']}", text)
    return _QUERY_SECRETS.sub(lambda match: f"{match['head']}{MASK}", text)


def mask_url(url: str) -> str:
    """One URL with its password masked: ``postgresql://app:***@db/fakewatch``."""
    return mask_secrets(url)


class SafeFormatter(logging.Formatter):
    """A log formatter whose lines carry no password and no raw control character."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return shown(mask_secrets(super().formatMessage(record)))

    def formatException(self, ei: object) -> str:  # noqa: N802
        return mask_secrets(super().formatException(ei))  # type: ignore[arg-type]
