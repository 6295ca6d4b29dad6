"""The verdict rules on their own: threshold, uncertain band, disagreeing views, out of domain, provenance."""

from __future__ import annotations

import numpy as np
import pytest

from fakewatch.classifiers.base import Views
from fakewatch.evidence import Evidence
from fakewatch.verdicts import DISAGREEMENT_WIDENING, Score, decide, judge

SIGNED = Evidence("c2pa", 1, "manifest", "proves_ai", "made by an image generator")
UNSIGNED = Evidence("parameters", 1, "a1111", "proves_ai", "AUTOMATIC1111 generation parameters")
VIEWS = Views((1.0, 1.0), (0.5, 0.5))
AGREE = np.array([3.0, 2.0])  # both views: fake
DISAGREE = np.array([3.0, -3.0])  # backbone fake, residual real


@pytest.mark.parametrize(("p_fake", "threshold", "margin", "label"), [
    (0.9, 0.5, 0.1, "fake"), (0.1, 0.5, 0.1, "real"), (0.55, 0.5, 0.1, "uncertain"), (0.45, 0.5, 0.1, "uncertain"),
    (0.5, 0.5, 0.0, "fake"), (0.55, 0.5, 0.0, "fake"), (0.29, 0.3, 0.0, "real"), (0.61, 0.5, 0.1, "fake")])
def test_the_threshold_and_the_uncertain_band_decide_the_label(p_fake: float, threshold: float, margin: float,
                                                                label: str) -> None:
    judged = judge(Score(p_fake, threshold), margin)
    assert judged.label == label == decide(p_fake, threshold, margin).label
    assert judged.reason == "classifier" and judged.reason_detail is None
    assert judged.p_fake == p_fake and judged.threshold == threshold
    assert judged.confidence == pytest.approx(max(p_fake, 1 - p_fake))


def test_where_the_views_disagree_the_band_is_widened_and_the_detail_says_so() -> None:
    assert judge(Score(0.65, 0.5, VIEWS, AGREE), 0.1).label == "fake"
    widened = judge(Score(0.65, 0.5, VIEWS, DISAGREE), 0.1)
    assert widened.label == "uncertain" and widened.reason == "classifier"
    assert widened.reason_detail is not None and "disagree" in widened.reason_detail
    assert f"{0.1 * DISAGREEMENT_WIDENING:.2f}" in widened.reason_detail
    far = judge(Score(0.9, 0.5, VIEWS, DISAGREE), 0.1)
    assert far.label == "fake" and far.reason_detail is not None  # beyond the widened band the score stands
    assert judge(Score(0.65, 0.5, None, DISAGREE), 0.1).label == "fake"  # no views in the card: as before
    assert judge(Score(0.65, 0.5, VIEWS, None), 0.1).label == "fake"  # no view logits from the runtime: as before


def test_an_image_no_classifier_covers_is_uncertain_and_unscored() -> None:
    judged = judge(None, 0.1, uncovered="4000x3000 px: no active classifier covers images this size")
    assert judged.fields() == {"label": "uncertain", "p_fake": 0.5, "confidence": 0.0, "threshold": 0.5,
                               "reason": "out_of_domain",
                               "reason_detail": "4000x3000 px: no active classifier covers images this size"}


def test_signed_provenance_outranks_the_classifier_with_full_confidence() -> None:
    judged = judge(Score(0.1, 0.5), 0.1, SIGNED)
    assert (judged.label, judged.reason, judged.confidence, judged.p_fake) == ("fake", "provenance", 1.0, 0.1)
    assert judged.reason_detail is not None and judged.reason_detail.startswith("signed C2PA credentials")
    assert "the classifier disagrees (p 0.10)" in judged.reason_detail


def test_unsigned_provenance_decides_the_label_but_keeps_the_classifiers_confidence() -> None:
    judged = judge(Score(0.2, 0.5), 0.1, UNSIGNED)
    assert (judged.label, judged.reason) == ("fake", "provenance")
    assert judged.confidence == pytest.approx(0.8)
    assert judged.reason_detail is not None and judged.reason_detail.startswith("unsigned generator parameters")
    agreeing = judge(Score(0.9, 0.5), 0.1, UNSIGNED)
    assert agreeing.reason_detail is not None and "disagrees" not in agreeing.reason_detail


def test_provenance_on_an_uncovered_image_names_no_score() -> None:
    unsigned = judge(None, 0.1, UNSIGNED, uncovered="too large")
    assert (unsigned.label, unsigned.reason, unsigned.confidence, unsigned.p_fake) == ("fake", "provenance", 0.0, 0.5)
    assert unsigned.reason_detail is not None and "disagrees" not in unsigned.reason_detail
    assert judge(None, 0.1, SIGNED, uncovered="too large").confidence == 1.0


def test_a_long_provenance_detail_is_cut_to_the_column() -> None:
    long = Evidence("xmp", 1, "digital_source_type", "proves_ai", "x" * 5000)
    detail = judge(Score(0.9, 0.5), 0.1, long).reason_detail
    assert detail is not None and len(detail) == 1000
