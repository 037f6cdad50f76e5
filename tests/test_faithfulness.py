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


def test_mard_rank_accuracy_and_tau_hand_computed():
    gt = np.array([1, 2, 3, 4, 5, 6, 7])
    oc = np.array([2, 1, 3, 4, 5, 7, 6])
    assert fa.mard(gt, oc) == pytest.approx(4 / 7)  # paper's 0.5714 pattern
    assert fa.rank_accuracy(gt, oc) == pytest.approx(3 / 7)
    assert fa.kendall_tau(gt, gt[::-1]) == pytest.approx(-1.0)
    assert fa.kendall_tau(gt, oc) == pytest.approx(1 - 2 * 2 / 21)  # 2 discordant of 21 pairs
    with pytest.raises(ValueError, match="differ in length"):
        fa.mard(gt, oc[:3])


def test_rank_directions_and_ties():
    assert fa.rank(np.array([0.2, 0.9, 0.5]), higher_is_better=True).tolist() == [3, 1, 2]
    assert fa.rank(np.array([0.2, 0.9, 0.5]), higher_is_better=False).tolist() == [1, 3, 2]
    assert fa.rank(np.array([0.5, 0.5, 0.1]), higher_is_better=True).tolist() == [1, 1, 3]


def test_agreement_perfect_and_reversed():
    rng = np.random.default_rng(0)
    quality = np.linspace(0.9, 0.1, 5)
    ious = quality + rng.normal(0, 0.01, (20, 5))
    aucs_good = (1 - quality) + rng.normal(0, 0.01, (20, 5))  # good localisation -> low AUC
    point = fa.agreement(ious, aucs_good)
    assert point == {"mard": 0.0, "rank_accuracy": 1.0, "kendall_tau": pytest.approx(1.0)}
    bad = fa.agreement(ious, quality + rng.normal(0, 0.01, (20, 5)))
    assert bad["kendall_tau"] == pytest.approx(-1.0) and bad["mard"] == pytest.approx(12 / 5)
    ci = fa.agreement_ci(ious, aucs_good, n_boot=50, seed=1)
    assert ci["mard"] == (0.0, 0.0) and ci == fa.agreement_ci(ious, aucs_good, n_boot=50, seed=1)


def test_iou_and_binarisation_rules():
    truth = np.zeros((4, 4), bool)
    truth[:2, :2] = True
    region = np.zeros((4, 4), bool)
    region[:2, :3] = True
    assert fa.iou(region, truth) == pytest.approx(4 / 6)
    assert np.isnan(fa.iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)))
    heat = np.linspace(0, 1, 16).reshape(4, 4)
    assert fa.binarise(heat, "threshold", 0.5).sum() == 8
    levels = np.repeat([1, 2, 3, 5], 4).reshape(4, 4)
    assert fa.binarise(heat, "kmeans", levels=levels, n_levels=2).sum() == 8
    assert 0 < fa.binarise(heat, "otsu").sum() < 16
    with pytest.raises(ValueError, match="unknown binarisation rule 'top'"):
        fa.binarise(heat, "top")
