"""Where the photo classifier's temperature and threshold are chosen: a random share of the trained groups,
or whole groups left out of training (``--validation groups``)."""

from __future__ import annotations

import pytest

from fakewatch.training.photo_data import Sample, carve, validation_groups


def _samples() -> list[Sample]:
    sizes = {"fake/a": 40, "fake/b": 30, "fake/c": 20, "fake/d": 10, "fake/held": 15, "fake/huge": 300,
             "real/x": 50, "real/y": 25, "real/z": 25, "real/cams": 12}
    return [Sample(f"/{group}/{index}.png", int(group.startswith("fake")), group, None)
            for group, count in sizes.items() for index in range(count)]


def test_validation_groups_are_whole_groups_near_the_share_of_each_label() -> None:
    samples = _samples()
    candidates = [i for i, sample in enumerate(samples) if sample.group != "fake/held"]
    for seed in range(8):
        chosen = validation_groups(samples, candidates, 0.15, seed)
        assert "fake/held" not in chosen and "fake/huge" not in chosen  # not a candidate; over twice the share
        for label, total in ((1, 400), (0, 112)):
            taken = sum(1 for i in candidates if samples[i].label == label and samples[i].group in chosen)
            assert 0 < taken <= 2 * 0.15 * total, (seed, label, chosen)
    assert len({frozenset(validation_groups(samples, candidates, 0.15, seed)) for seed in range(8)}) > 1


def test_carve_with_group_validation_never_trains_on_a_validation_group() -> None:
    samples = _samples()
    parts = carve(samples, ["fake/held", "real/cams"], 0.15, 0.1, 7, validation="groups")
    groups = {name: {samples[i].group for i in members} for name, members in parts.items()}
    assert groups["heldout"] == {"fake/held", "real/cams"}
    assert groups["valid"] and not groups["valid"] & (groups["train"] | groups["carve"] | groups["heldout"])
    assert {samples[i].label for i in parts["valid"]} == {0, 1}
    assert groups["carve"] <= groups["train"]  # the in-training figure: images of trained groups
    everything = sorted(i for members in parts.values() for i in members)
    assert everything == list(range(len(samples)))  # each image in exactly one part

    random_parts = carve(samples, ["fake/held", "real/cams"], 0.15, 0.1, 7)
    assert {samples[i].group for i in random_parts["valid"]} <= {samples[i].group for i in random_parts["train"]}
    with pytest.raises(ValueError, match="validation"):
        carve(samples, [], 0.1, 0.1, 7, validation="prompts")
