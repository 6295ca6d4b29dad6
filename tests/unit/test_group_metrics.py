import numpy as np
import pytest

from fakewatch.classifiers.base import aggregate, sigmoid
from fakewatch.training.group_metrics import balanced_threshold, group_report
from fakewatch.training.photo_data import Sample, matches


def _samples(groups: list[tuple[str, int, int]]) -> list[Sample]:
    return [Sample(f"{group}/{i}.jpg", label, group) for group, label, count in groups for i in range(count)]


def test_group_report_gives_each_group_its_own_accuracy_auc_and_false_positive_rate() -> None:
    samples = _samples([("fake/a", 1, 4), ("fake/b", 1, 4), ("real/x", 0, 4)])
    p_fake = np.array([0.9, 0.8, 0.95, 0.7,  0.2, 0.3, 0.6, 0.1,  0.1, 0.2, 0.65, 0.05])
    report = group_report(samples, p_fake, threshold=0.5, margin=0.0)
    groups = report["groups"]
    assert groups["fake/a"]["accuracy"] == 1.0 and groups["fake/a"]["roc_auc"] == 1.0
    assert groups["fake/b"]["roc_auc"] == pytest.approx(10 / 16)  # ties count half
    assert groups["fake/b"]["accuracy"] == 0.25 and groups["fake/b"]["miss_rate"] == 0.75
    assert groups["real/x"]["false_positive_rate"] == 0.25
    totals = report["totals"]
    assert totals["balanced_accuracy"] == pytest.approx(((5 / 8) + 0.75) / 2)
    assert totals["false_positive_rate"] == 0.25


def test_uncertain_answers_are_neither_flagged_nor_missed() -> None:
    samples = _samples([("fake/a", 1, 2), ("real/x", 0, 2)])
    report = group_report(samples, np.array([0.55, 0.9, 0.45, 0.1]), threshold=0.5, margin=0.1)
    assert report["groups"]["fake/a"]["uncertain_rate"] == 0.5 and report["groups"]["fake/a"]["miss_rate"] == 0
    assert report["groups"]["real/x"]["false_positive_rate"] == 0.0


def test_balanced_threshold_ignores_class_sizes() -> None:
    labels = np.array([1] * 10 + [0] * 90, np.float64)
    p_fake = np.concatenate([np.full(10, 0.4), np.full(90, 0.2)])
    assert 0.2 < balanced_threshold(p_fake, labels) <= 0.4
    with pytest.raises(ValueError):
        balanced_threshold(p_fake[:10], labels[:10])


def test_crop_scores_average_in_logit_space_and_single_crops_pass_through() -> None:
    logits = np.array([2.0, -1.0, 0.5, 3.0])
    p = sigmoid(logits)
    merged = aggregate(p, np.array([0, 0, 0, 1]), 2)
    assert merged[0] == pytest.approx(sigmoid(np.array([0.5]))[0]) and merged[1] == pytest.approx(p[3])
    assert np.array_equal(aggregate(p, np.arange(4), 4), p)


def test_group_patterns() -> None:
    assert matches("fake/black-forest-labs_FLUX.1-dev", ["fake/*FLUX*"])
    assert not matches("real/bsd100", ["fake/*", "real/sunhays80"])
