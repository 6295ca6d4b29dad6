"""ResultFilter.parse: one set of checks and messages for the command line, the API and the console."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fakewatch.errors import FilterError
from fakewatch.filters import MAX_ID, ResultFilter, parse_since
from fakewatch.values import RESULT_COLUMNS, EvidenceKind, Order, Reason, Status, VerdictLabel, choices, one_of


def test_empty_values_mean_no_filter() -> None:
    assert ResultFilter.parse(label="", status="", reason="", evidence="", order="", since="", path="",
                              offset=0) == ResultFilter()


def test_values_become_members_of_their_lists() -> None:
    parsed = ResultFilter.parse(label="fake", status="done", reason="out_of_domain", evidence="camera_exif",
                                order="p_fake", min_confidence="0.9", limit="50", offset="100")
    assert (parsed.label, parsed.status, parsed.reason, parsed.evidence, parsed.order) == (
        VerdictLabel.FAKE, Status.DONE, Reason.OUT_OF_DOMAIN, EvidenceKind.CAMERA_EXIF, Order.P_FAKE)
    assert (parsed.min_confidence, parsed.limit, parsed.offset) == (0.9, 50, 100)
    assert parsed.label == "fake" and isinstance(parsed.label, str)


@pytest.mark.parametrize(("given", "message"), [
    ({"label": "bogus"}, "label must be fake, real or uncertain, not 'bogus'"),
    ({"status": "lost"}, "status must be pending, done, error or skipped, not 'lost'"),
    ({"reason": "luck"}, "reason must be classifier, provenance or out_of_domain, not 'luck'"),
    ({"order": "sideways"}, "order must be newest, p_fake or path, not 'sideways'"),
    ({"evidence": "astrology"}, "evidence must be c2pa_ai_source, "),
    ({"order": "path", "after": 3}, "after (keyset pages) goes with order=newest; use offset for other orders"),
    ({"limit": 0}, "limit must be between 1 and "),
    ({"limit": 1001, "max_limit": 1000}, "limit must be between 1 and 1000"),
    ({"after": MAX_ID + 1}, f"after must be between 0 and {MAX_ID}"),
    ({"offset": -1}, f"offset must be between 0 and {MAX_ID}"),
    ({"offset": "ten"}, "offset must be a whole number"),
    ({"min_confidence": 1.5}, "min_confidence must be between 0 and 1"),
    ({"min_confidence": "high"}, "min_confidence must be a number"),
    ({"min_confidence": "nan"}, "min_confidence must be a number"),
    ({"since": "yesterdayish"}, "since: use an ISO date/time"),
])
def test_bad_values_are_refused_with_what_is_allowed(given: dict[str, object], message: str) -> None:
    with pytest.raises(FilterError) as caught:
        ResultFilter.parse(**given)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_since_takes_ages_and_iso_times() -> None:
    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("1.5d", now) == now - timedelta(days=1.5)
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T12:00+01:00") == datetime(2026, 11, 1, 11, tzinfo=UTC)
    assert parse_since("  ") is None


def test_the_lists_read_as_messages_and_columns() -> None:
    assert choices(Status) == ("pending", "done", "error", "skipped")
    assert one_of(VerdictLabel) == "fake, real or uncertain"
    assert RESULT_COLUMNS[:3] == ("id", "path", "sha256") and "evidence" in RESULT_COLUMNS
