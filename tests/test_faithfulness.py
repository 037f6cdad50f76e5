"""Deletion AUC (Eq. 9), rankings, MARD (Eq. 10), rank accuracy, Kendall tau, IoU."""

import numpy as np
import pytest

from xaistudy.evaluate import faithfulness as fa


def test_trapezoid_auc_hand_computed():
    x = np.array([0, 0.25, 0.5, 0.75, 1.0])
    y = np.array([1.0, 0.8, 0.4, 0.2, 0.0])
    # 0.25 * ((1 + .8) / 2 + (.8 + .4) / 2 + (.4 + .2) / 2 + (.2 + 0) / 2) = 0.475
    assert fa.trapezoid_auc(x, y) == pytest.approx(0.475)
    uneven = np.array([0, 0.1, 1.0])
    assert fa.trapezoid_auc(uneven, np.array([1.0, 0.0, 0.0])) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="non-decreasing"):
        fa.trapezoid_auc(np.array([0, 1, 0.5]), np.ones(3))


def test_occluded_fractions_relative_and_absolute():
    masks = np.zeros((2, 4, 4), bool)  # Mask_1 = 2 px, Mask_2 = 8 px of a 16-px image
    masks[0, 0, :2] = True
    masks[1, :2] = True
    assert np.allclose(fa.occluded_fractions(masks, relative=True), [0, 0.25, 1.0])
    assert np.allclose(fa.occluded_fractions(masks, relative=False), [0, 2 / 16, 8 / 16])
    empty = np.zeros((3, 4, 4), bool)
    assert np.allclose(fa.occluded_fractions(empty), [0, 1 / 3, 2 / 3, 1])


def test_iou_and_binarisation_rules():
    truth = np.zeros((4, 4), bool)
    truth[:2, :2] = True
    region = np.zeros((4, 4), bool)
    region[:2, :3] = True
    heat = np.linspace(0, 1, 16).reshape(4, 4)
    assert fa.binarise(heat, "threshold", 0.5).sum() == 8
    levels = np.repeat([1, 2, 3, 5], 4).reshape(4, 4)
    assert fa.binarise(heat, "kmeans", levels=levels, n_levels=2).sum() == 8
    assert 0 < fa.binarise(heat, "otsu").sum() < 16
    with pytest.raises(ValueError, match="unknown binarisation rule 'top'"):
        fa.binarise(heat, "top")
