"""Which results to list: :class:`ResultFilter`, parsed and checked the same way for the command line
(`results`, `rescan`), the HTTP API and the console. Free of SQLAlchemy: :mod:`fakewatch.db.results`
turns a filter into a query."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from fakewatch.errors import FilterError
from fakewatch.values import EvidenceKind, Order, Reason, Status, VerdictLabel, choices, one_of

MAX_ID = 2 ** 63 - 1  # the largest id (and row offset) a database column holds
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
Value = TypeVar("Value", bound=StrEnum)


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """An ISO date/time (UTC unless it says otherwise) or an age such as 30m, 2h or 7d, as a moment."""
    if value is None or not value.strip():
        return None
    match = _AGE.fullmatch(value.strip())
    if match:
        seconds = float(match.group(1)) * _SECONDS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise FilterError("since: use an ISO date/time (2026-11-01, 2026-11-01T12:00) or an age like 30m, 2h, "
                          "7d") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ResultFilter:
    label: VerdictLabel | None = None
    min_confidence: float | None = None
    since: datetime | None = None
    path_glob: str | None = None
    classifier: str | None = None
    status: Status | None = None
    include_deleted: bool = False
    disagreements: bool = False  # the latest verdict contradicts the latest analyst label
    changed: bool = False  # the latest verdict's label differs from the verdict before it
    limit: int | None = None
    after: int | None = None  # keyset pagination: the rows that come after this image id in the listing
    reason: Reason | None = None  # provenance (evidence decided the label), classifier or out_of_domain
    evidence: EvidenceKind | None = None  # only images with evidence of this kind (c2pa_ai_source, ...)
    order: Order = Order.NEWEST  # newest (keyset pages with `after`), p_fake (classified images, most likely
    # fake first) or path
    offset: int | None = None  # rows to skip, for the orders other than newest

    @classmethod
    def parse(cls, *, label: str | None = None, min_confidence: float | str | None = None,
              since: str | None = None, path: str | None = None, classifier: str | None = None,
              status: str | None = None, disagreements: bool = False, changed: bool = False,
              include_deleted: bool = False, limit: int | str | None = None, after: int | str | None = None,
              order: str | None = None, offset: int | str | None = None, reason: str | None = None,
              evidence: str | None = None, max_limit: int | None = None) -> ResultFilter:
        """A filter from what a user typed (empty means no filter); :class:`FilterError` says what is wrong.

        ``max_limit`` caps the page size (the HTTP API's pages); an offset of 0 is no offset."""
        chosen_order = _member(Order, "order", order) or Order.NEWEST
        after_id = _whole(after, "after", 0)
        if chosen_order != Order.NEWEST and after_id is not None:
            raise FilterError("after (keyset pages) goes with order=newest; use offset for other orders")
        confidence = _number(min_confidence, "min_confidence")
        if confidence is not None and not 0 <= confidence <= 1:
            raise FilterError("min_confidence must be between 0 and 1")
        return cls(label=_member(VerdictLabel, "label", label), min_confidence=confidence,
                   since=parse_since(since), path_glob=path or None, classifier=classifier or None,
                   status=_member(Status, "status", status), disagreements=disagreements, changed=changed,
                   include_deleted=include_deleted, limit=_whole(limit, "limit", 1, max_limit or MAX_ID),
                   after=after_id, order=chosen_order, offset=_whole(offset, "offset", 0) or None,
                   reason=_member(Reason, "reason", reason), evidence=_member(EvidenceKind, "evidence", evidence))


def _member(values: type[Value], name: str, given: str | None) -> Value | None:
    """``given`` as a member of ``values``; None when empty."""
    if given is None or given == "":
        return None
    if given not in choices(values):
        raise FilterError(f"{name} must be {one_of(values)}, not {given!r}")
    return values(given)


def _whole(given: int | str | None, name: str, low: int, high: int = MAX_ID) -> int | None:
    """``given`` as a whole number from ``low`` to ``high``; None when empty."""
    if given is None or given == "":
        return None
    try:
        number = int(given)
    except ValueError as exc:
        raise FilterError(f"{name} must be a whole number") from exc
    if not low <= number <= high:
        raise FilterError(f"{name} must be between {low} and {high}")
    return number


def _number(given: float | str | None, name: str) -> float | None:
    if given is None or given == "":
        return None
    try:
        number = float(given)
    except ValueError as exc:
        raise FilterError(f"{name} must be a number") from exc
    if math.isnan(number):
        raise FilterError(f"{name} must be a number")
    return number

