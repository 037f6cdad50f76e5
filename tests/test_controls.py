"""The null controls: what each keeps (coverage, area, architecture) and what it destroys
(location, pairing, learned weights), seeded."""

import numpy as np
import pytest
import torch
from toys import tiny_resnet

from xaistudy.evaluate import controls


@pytest.mark.parametrize("smooth", [0.0, 2.0])
def test_coverage_matched_maps_keep_every_value_and_lose_the_place(smooth):
    rng = np.random.default_rng(0)
    maps = np.zeros((4, 32, 32))
    maps[:, 4:12, 4:12] = rng.random((4, 8, 8)) + 0.5  # every map on the same corner square
    out = controls.coverage_matched(maps, 3, smooth=smooth)
    np.testing.assert_array_equal(np.sort(out.reshape(4, -1)), np.sort(maps.reshape(4, -1)))
    for t in (0.1, 0.7, 1.2):  # the same coverage at every threshold
        np.testing.assert_array_equal((out > t).sum((1, 2)), (maps > t).sum((1, 2)))
    inside = (out[:, 4:12, 4:12] > 0).mean()
    assert inside < 0.5  # the square's values moved away from it
    np.testing.assert_array_equal(out, controls.coverage_matched(maps, 3, smooth=smooth))
    assert not np.array_equal(out, controls.coverage_matched(maps, 4, smooth=smooth))


def test_smooth_coverage_matched_maps_are_blobs():
    maps = np.zeros((2, 64, 64))
    maps[:, :16, :16] = 1.0
    pixels = controls.coverage_matched(maps, 0) > 0
    blobs = controls.coverage_matched(maps, 0, smooth=4.0) > 0

    def edges(b):  # 4-neighbour changes: many for scattered pixels, few for blobs
        return (
            np.abs(np.diff(b.astype(int), axis=1)).sum()
            + np.abs(np.diff(b.astype(int), axis=2)).sum()
        )

    assert edges(blobs) < edges(pixels) / 3


def test_partner_index_pairs_each_unit_with_another_of_its_class_and_another_patient():
    classes = np.repeat([0, 1, 2], 6)
    partner = controls.partner_index(18, 1, same=classes)
    assert (partner != np.arange(18)).all()
    assert (classes[partner] == classes).all()
    patients = np.repeat(np.arange(6), 3)
    partner = controls.partner_index(18, 1, differ=patients)
    assert (patients[partner] != patients).all()
    assert sorted(partner) == list(range(18))  # a permutation: every mask used once
    np.testing.assert_array_equal(partner, controls.partner_index(18, 1, differ=patients))
    # a class with one unit still gets another unit
    lone = controls.partner_index(5, 0, same=np.array([0, 0, 0, 0, 1]))
    assert (lone != np.arange(5)).all()


def test_untrained_copy_resets_every_weight_and_leaves_the_model():
    model = tiny_resnet(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # "trained": far from any initialisation
        model.bn1.running_mean.fill_(3.0)
    before = [p.clone() for p in model.parameters()]
    blank = controls.untrained_copy(model, 7)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(
        not torch.equal(a, b) for a, b in zip(model.parameters(), blank.parameters(), strict=True)
    )
    assert float(blank.bn1.running_mean.abs().max()) == 0.0 and not blank.training
    again = controls.untrained_copy(model, 7)
    assert all(
        torch.equal(a, b) for a, b in zip(blank.parameters(), again.parameters(), strict=True)
    )
    state = torch.random.get_rng_state()
    controls.untrained_copy(model, 8)
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator is untouched


def test_bad_inputs_get_one_clear_error():
    with pytest.raises(ValueError, match="one map per unit"):
        controls.coverage_matched(np.zeros(5))
    with pytest.raises(ValueError, match="smooth"):
        controls.coverage_matched(np.zeros((2, 4, 4)), smooth=-1)
    with pytest.raises(ValueError, match="at least 2 units"):
        controls.partner_index(1)
    with pytest.raises(ValueError, match="one label per unit"):
        controls.partner_index(4, same=np.zeros(3))
    with pytest.raises(ValueError, match="unknown control 'random'"):
        controls.describe("random")
    assert "shuffled" in controls.describe("coverage-matched maps")
