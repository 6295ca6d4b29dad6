"""What a verdict says: the pure rules from a classifier's score (or its absence) and a file's evidence to
the verdict's label, confidence and reason. No database, no classifier, no clock.

In order:

1. A calibrated ``p_fake`` against the classifier's threshold: ``fake`` at or above it, ``real`` below,
   ``uncertain`` within ``uncertain_margin`` of it (:func:`decide`). Confidence is ``max(p, 1 - p)``.
2. Where a fused classifier's two views disagree (one calls the image fake, the other real, each beyond the
   margin of its own threshold), the uncertain band reaches :data:`DISAGREEMENT_WIDENING` margins, and the
   verdict's detail says so.
3. An image no active classifier covers is ``uncertain``, p_fake 0.5, confidence 0, reason ``out_of_domain``.
4. Proof in the file (:func:`fakewatch.evidence.proof`) outranks all of that: the label is ``fake`` and the
   reason ``provenance``; signed proof (valid C2PA) is certain (confidence 1), unsigned metadata keeps the
   classifier's confidence, since anyone can write it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fakewatch.classifiers.base import Views
from fakewatch.evidence import Evidence, provenance, signed
from fakewatch.values import Reason

DISAGREEMENT_WIDENING = 2.0  # where the views disagree, ``uncertain`` reaches this many margins from the threshold
UNJUDGED_P_FAKE = 0.5  # p_fake and threshold recorded for an image no classifier covers
DETAIL_LENGTH = 1000  # longest reason_detail written


@dataclass(frozen=True)
class Decision:
    """What one calibrated probability means, before it is stored as a verdict."""

    label: str  # "fake", "real" or "uncertain"
    p_fake: float
    confidence: float


def decide(p_fake: float, threshold: float, uncertain_margin: float) -> Decision:
    """Turn a calibrated probability into a label; near the threshold the answer is 'uncertain'."""
    if abs(p_fake - threshold) < uncertain_margin:
        label = "uncertain"
    else:
        label = "fake" if p_fake >= threshold else "real"
    return Decision(label, float(p_fake), float(max(p_fake, 1.0 - p_fake)))


@dataclass(frozen=True)
class Score:
    """A classifier's answer for one image: calibrated ``p_fake``, the classifier's threshold, and for a fused
    classifier its card's ``views`` and the image's two view logits."""

    p_fake: float
    threshold: float
    views: Views | None = None
    view_logits: np.ndarray | None = None


@dataclass(frozen=True)
class Judgement:
    """The verdict row's own fields (the runtime adds the image, classifier, time and host)."""

    label: str
    p_fake: float
    confidence: float
    threshold: float
    reason: str
    reason_detail: str | None = None

    def fields(self) -> dict[str, Any]:
        return {"label": self.label, "p_fake": self.p_fake, "confidence": self.confidence,
                "threshold": self.threshold, "reason": self.reason, "reason_detail": self.reason_detail}


def judge(score: Score | None, uncertain_margin: float, proof: Evidence | None = None,
          uncovered: str | None = None) -> Judgement:
    """The verdict for one image from its ``score`` (None: no active classifier covers it, and ``uncovered``
    says why) and the ``proof`` its file carries, if any."""
    if score is None:
        judged = Judgement("uncertain", UNJUDGED_P_FAKE, 0.0, UNJUDGED_P_FAKE, Reason.OUT_OF_DOMAIN, uncovered)
    else:
        judged = _scored(score, uncertain_margin)
    return judged if proof is None else _proven(judged, proof)


def _scored(score: Score, margin: float) -> Judgement:
    """:func:`decide`, with the uncertain band widened where a fused classifier's two views disagree."""
    views, logits = score.views, score.view_logits
    if views is None or logits is None or not views.disagree(logits, margin):
        decision = decide(score.p_fake, score.threshold, margin)
        return Judgement(decision.label, decision.p_fake, decision.confidence, score.threshold, Reason.CLASSIFIER)
    first, second = views.probabilities(logits)
    widened = margin * DISAGREEMENT_WIDENING
    decision = decide(score.p_fake, score.threshold, widened)
    return Judgement(decision.label, decision.p_fake, decision.confidence, score.threshold, Reason.CLASSIFIER,
                     f"the backbone view and the residual view disagree (p_fake {first:.2f} and {second:.2f}): "
                     f"uncertain within {widened:.2f} of the threshold")


def _proven(judged: Judgement, proof: Evidence) -> Judgement:
    """Provenance outranks the classifier, whatever it says; unsigned metadata keeps its confidence."""
    by_classifier = judged.reason == Reason.CLASSIFIER
    detail = provenance(proof, judged.p_fake if by_classifier else None, judged.threshold)[:DETAIL_LENGTH]
    return Judgement("fake", judged.p_fake, 1.0 if signed(proof) else judged.confidence, judged.threshold,
                     Reason.PROVENANCE, detail)
