"""Localisation metrics against hand-computed values and an independent IoU (scikit-learn)."""

import numpy as np
import pytest
from sklearn.metrics import jaccard_score

from xaistudy.evaluate import localisation as loc


def square(size=8, top=0, left=0, side=4):
    m = np.zeros((size, size), bool)
    m[top : top + side, left : left + side] = True
    return m


def test_pointing_game_hit_miss_and_tolerance():
    mask = square(top=0, left=0, side=3)
    sal = np.zeros((8, 8))
    sal[1, 1] = 5.0
    assert loc.pointing_game(sal, mask)
    sal = np.zeros((8, 8))
    sal[4, 4] = 5.0  # two pixels diagonal from the mask corner (2, 2): distance sqrt(8)
    assert not loc.pointing_game(sal, mask)
    assert not loc.pointing_game(sal, mask, tolerance=2)
    assert loc.pointing_game(sal, mask, tolerance=3)


def test_pointing_game_ties_count_as_the_share_inside():
    mask = square(top=0, left=0, side=4)
    sal = np.zeros((8, 8))
    sal[0, 0] = sal[7, 7] = 1.0
    assert loc.pointing_game(sal, mask) == 0.5
    sal[7, 7] = 0.5
    assert loc.pointing_game(sal, mask) == 1.0
    # a constant map scores the mask's area share: chance level
    assert loc.pointing_game(np.ones((8, 8)), mask) == pytest.approx(16 / 64)
    plateau = np.zeros((8, 8))
    plateau[:, :2] = 2.0  # a "superpixel" of 16 pixels, 8 of them in the mask
    assert loc.pointing_game(plateau, mask) == pytest.approx(0.5)


def test_binarise_rules():
    sal = np.arange(16, dtype=float).reshape(4, 4) - 4  # values -4 .. 11
    mask = np.zeros((4, 4), bool)
    mask[:, :1] = True  # 4 pixels
    kept = loc.binarise(sal, "mask_area", mask=mask)
    assert kept.sum() == 4 and kept.ravel()[-4:].all()  # the 4 highest values
    assert loc.binarise(sal, "top_fraction", 0.25).sum() == 4
    thr = loc.binarise(sal, "threshold", 0.5)  # > 5.5
    np.testing.assert_array_equal(thr.ravel(), sal.ravel() > 5.5)
    bimodal = np.zeros((10, 10))
    bimodal[:3] = 1.0
    bimodal += np.linspace(0, 0.05, 100).reshape(10, 10)
    kept = loc.binarise(bimodal, "otsu")
    assert kept[:3].all() and kept[3:].mean() < 0.1  # the high mode, at most a bin of the low


def test_binarise_never_keeps_negative_evidence():
    sal = -np.ones((4, 4))
    sal[0, 0] = 1.0
    mask = np.ones((4, 4), bool)
    assert loc.binarise(sal, "mask_area", mask=mask).sum() == 1
    assert loc.binarise(-np.ones((4, 4)), "otsu").sum() == 0


def test_iou_matches_hand_value_and_sklearn():
    a, b = square(top=0, left=0), square(top=2, left=2)
    assert loc.iou(a, b) == pytest.approx(4 / 28)
    assert loc.iou(a, b) == pytest.approx(jaccard_score(b.ravel(), a.ravel()))
    none = np.zeros((3, 3), bool)
    assert np.isnan(loc.iou(none, none)) and loc.iou(none, none, empty=0.0) == 0.0
    empty = np.zeros_like(a)
    stack = loc.iou(np.stack([a, empty]), np.stack([b, empty]))  # (..., H, W): one IoU per map
    assert stack.shape == (2,) and stack[0] == pytest.approx(4 / 28) and np.isnan(stack[1])
    sal = a.astype(float) * 3 + 1e-3 * np.random.default_rng(0).random((8, 8))
    assert loc.saliency_iou(sal, a) == pytest.approx(1.0)


def test_positive_share():
    sal = np.zeros((4, 4))
    sal[0, 0], sal[3, 3], sal[1, 1] = 3.0, 1.0, -10.0
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    assert loc.positive_share(sal, mask) == pytest.approx(0.75)
    assert np.isnan(loc.positive_share(-np.ones((4, 4)), mask))


def test_score_maps_shapes():
    maps = np.random.default_rng(0).random((3, 8, 8))
    masks = np.stack([square()] * 3)
    scores = loc.score_maps(maps, masks)
    assert set(scores) == {"pointing_game", "iou", "positive_share"}
    assert all(v.shape == (3,) for v in scores.values())


def test_region_coverage_counts_each_object_by_hand():
    mask = np.zeros((10, 10), bool)
    mask[1:4, 1:5] = True  # 12 px, the larger region
    mask[6:9, 6:9] = True  # 9 px
    mask[0, 9] = True  # 1 px: below min_area (2 % of 100 px), not a region
    saliency = np.zeros((10, 10))
    saliency[1:4, 1:5] = 2.0  # all of the first region
    saliency[6:9, 6] = 1.0  # 3 of the second's 9 pixels
    saliency[0, 0] = 0.5
    # mask_area keeps the 22 highest pixels: the 15 positive ones, no zero
    np.testing.assert_allclose(loc.region_coverage(saliency, mask, min_area=0.02), [1.0, 1 / 3])
    even = mask.astype(float)  # covers every region whole
    np.testing.assert_allclose(loc.region_coverage(even, mask, min_area=0.02), [1.0, 1.0])
    assert len(loc.region_coverage(even, mask, min_area=0.1)) == 1  # the 9-px region is small
    diagonal = np.eye(4, dtype=bool)  # 8-connected: one region, not four
    assert len(loc.region_coverage(np.ones((4, 4)), diagonal, min_area=0.0)) == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: loc.pointing_game(np.zeros((4, 4)), np.zeros((4, 4), bool)), "non-empty mask"),
        (lambda: loc.pointing_game(np.zeros((4, 4)), np.ones((5, 4), bool)), "differs"),
        (lambda: loc.pointing_game(np.full((4, 4), np.nan), np.ones((4, 4), bool)), "NaN"),
        (lambda: loc.binarise(np.ones((4, 4)), "median"), "unknown binarisation rule"),
        (lambda: loc.binarise(np.ones((4, 4)), "top_fraction"), "needs value"),
        (lambda: loc.binarise(np.ones((4, 4)), "mask_area"), "needs the mask"),
        (lambda: loc.binarise(np.ones(4), "otsu"), "2-D map"),
        (lambda: loc.region_coverage(np.ones((4, 4)), np.ones((4, 4)), min_area=1.0), "min_area"),
    ],
)
def test_bad_input_is_one_line(call, message):
    with pytest.raises(ValueError, match=message) as err:
        call()
    assert "\n" not in str(err.value)
