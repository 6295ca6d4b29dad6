import numpy as np
import pytest

from fakewatch.classifiers.base import sigmoid
from fakewatch.training.calibration import choose_threshold, fit_temperature
from fakewatch.training.metrics import classification_report, expected_calibration_error, roc_auc

# A fixed prediction set, worked out by hand below.
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], dtype=float)
P_FAKE = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.7, 0.6, 0.3, 0.95, 0.55])


def test_report_matches_hand_computed_values() -> None:
    report = classification_report(LABELS, P_FAKE, threshold=0.5)
    # predicted fake: 0.8 (a real), 0.9, 0.7, 0.6, 0.95, 0.55 -> TP=5, FP=1, FN=1 (0.3), TN=3
    assert report["confusion_matrix"] == [[3, 1], [1, 5]]
    assert report["accuracy"] == pytest.approx(0.8)
    assert report["precision"] == pytest.approx(5 / 6)
    assert report["recall"] == pytest.approx(5 / 6)
    assert report["f1"] == pytest.approx(5 / 6)
    assert report["per_class"]["real"]["precision"] == pytest.approx(3 / 4)
    assert report["per_class"]["real"]["recall"] == pytest.approx(3 / 4)
    # AUC: of the 24 (fake, real) pairs the fake scores higher in 18: 0.9 and 0.95 beat all 4 reals,
    # 0.7, 0.6 and 0.55 beat 3 (not 0.8), 0.3 beats only 0.1 -> 4+4+3+3+3+1 = 18
    pairs = [(f, r) for f in P_FAKE[LABELS == 1] for r in P_FAKE[LABELS == 0]]
    assert report["roc_auc"] == pytest.approx(sum(f > r for f, r in pairs) / len(pairs))
    assert report["roc_auc"] == pytest.approx(18 / 24)


def test_auc_counts_ties_as_half() -> None:
    assert roc_auc(np.array([0, 1.0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert roc_auc(np.array([0, 0, 1.0]), np.array([0.2, 0.9, 0.9])) == pytest.approx(0.75)


def test_ece_by_hand() -> None:
    # Two predictions at confidence 0.9 (one right, one wrong): bin accuracy 0.5, gap 0.4.
    labels = np.array([1.0, 0.0])
    p_fake = np.array([0.9, 0.9])
    assert expected_calibration_error(labels, p_fake) == pytest.approx(0.4)


def test_uncertain_band() -> None:
    report = classification_report(LABELS, P_FAKE, threshold=0.5, uncertain_margin=0.1)
    # within 0.1 of 0.5: 0.4, 0.6, 0.55 -> 3 of 10 uncertain
    assert report["uncertain_rate"] == pytest.approx(0.3)


def test_temperature_scaling_fixes_overconfidence() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000).astype(float)
    true_logits = rng.normal(2.0, 1.5, 4000) * np.where(labels == 1, 1, -1)
    outcomes = rng.uniform(size=4000) < sigmoid(true_logits)  # labels drawn from calibrated probabilities
    labels = outcomes.astype(float)
    overconfident = true_logits * 4.0
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(4.0, rel=0.15)
    before = expected_calibration_error(labels, sigmoid(overconfident))
    after = expected_calibration_error(labels, sigmoid(overconfident / temperature))
    assert after < before / 2


def test_threshold_maximises_accuracy() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1], dtype=float)
    p_fake = np.array([0.1, 0.2, 0.62, 0.7, 0.8, 0.9])
    threshold = choose_threshold(p_fake, labels)
    assert 0.62 < threshold <= 0.7
