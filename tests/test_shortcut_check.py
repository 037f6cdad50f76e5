"""The shortcut check: hand-computed features, the baselines' bounds on the synthetic sets, CNN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xaistudy.core.store import Store
from xaistudy.evaluate import shortcut_check as C


def _tiles(images: np.ndarray, labels, masks=None, nuclei=None) -> C.TileArrays:
    n, h, w = images.shape[:3]
    masks = np.zeros((n, h, w), bool) if masks is None else masks
    nuclei = np.zeros((n, h, w), bool) if nuclei is None else nuclei
    return C.TileArrays(images, np.asarray(labels), masks, nuclei, np.arange(n))


def _two_tiles() -> C.TileArrays:
    """Tile 0: left half (0, 100, 200), right half (255, 255, 255); tile 1: all (16, 32, 48)."""
    images = np.zeros((2, 4, 4, 3), np.uint8)
    images[0, :, :2] = (0, 100, 200)
    images[0, :, 2:] = 255
    images[1] = (16, 32, 48)
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :, 2:] = True  # the white half is the evidence region
    nuclei = np.zeros((2, 4, 4), bool)
    nuclei[1, 0, :] = True  # one row of tile 1 is nucleus
    return _tiles(images, [0, 1], masks, nuclei)


def test_features_match_hand_computed_values() -> None:
    t = _two_tiles()
    assert C.features("mean RGB", t) == pytest.approx(
        np.array([[127.5, 177.5, 227.5], [16, 32, 48]])
    )
    grey0 = (100 + 255) / 2  # grey is the mean of R, G, B: 100 on the left, 255 on the right
    assert C.features("mean intensity", t)[:, 0] == pytest.approx([grey0, 32.0])
    stats = C.features("intensity statistics", t)
    assert stats[0, :2] == pytest.approx([grey0, (255 - 100) / 2])  # mean, population std
    assert stats[1] == pytest.approx([32, 0, 32, 32, 32, 32, 32])
    assert C.features("outside-mask colour", t) == pytest.approx(
        np.array([[0, 100, 200], [16, 32, 48]])
    )
    assert C.features("nuclear pixel share", t)[:, 0] == pytest.approx([0.0, 0.25])


def test_histograms_count_bins_and_leave_out_nuclei() -> None:
    t = _two_tiles()
    hist = C.features("colour histogram", t)
    b = C.HIST_BINS
    assert hist.shape == (2, 3 * b) and hist.sum(1) == pytest.approx([3.0, 3.0])
    # tile 0, red channel: half the pixels at 0 (bin 0), half at 255 (last bin)
    assert hist[0, 0] == pytest.approx(0.5) and hist[0, b - 1] == pytest.approx(0.5)
    assert hist[1, 16 * b // 256] == pytest.approx(1.0)  # red 16 -> bin 1 of 16
    images = t.images.copy()
    images[1, 0, :] = 250  # recolour the nucleus row: only the with-nuclei histogram moves
    t2 = _tiles(images, t.labels, t.masks, t.nuclei)
    assert not np.allclose(C.features("colour histogram", t2)[1], hist[1])
    no_nuc = C.features("histogram without nuclei", t2)
    assert no_nuc[1] == pytest.approx(C.features("histogram without nuclei", t)[1])
    assert no_nuc[1, 16 * b // 256] == pytest.approx(1.0)


def test_haematoxylin_fraction_orders_blue_above_pink() -> None:
    images = np.zeros((2, 8, 8, 3), np.uint8)
    images[0] = (60, 40, 140)  # dark blue-purple: haematoxylin
    images[1] = (240, 160, 200)  # pink: eosin
    t = _tiles(images, [0, 1])
    thresholds = C.haematoxylin_thresholds(t)
    frac = C.features("haematoxylin fraction", t, thresholds)
    assert frac.shape == (2, len(C.H_QUANTILES))
    assert (frac[0] >= frac[1]).all() and frac[0, 0] == 1.0 and frac[1, -1] == 0.0
    with pytest.raises(ValueError, match="needs h_thresholds"):
        C.features("haematoxylin fraction", t)


def test_bad_names_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="unknown baseline 'shape'"):
        C.features("shape", _two_tiles())
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        C.draw("mnist", "train", 4, 64, 0)
    with pytest.raises(ValueError, match="unknown split"):
        C.draw("synthetic-pcle", "holdout", 2, 64, 0)


def test_a_colour_shortcut_is_found_and_a_colourless_one_is_not() -> None:
    rng = np.random.default_rng(0)
    n = 40
    labels = np.arange(n) % 2
    images = rng.integers(90, 110, (n, 8, 8, 3)).astype(np.uint8)
    tinted = images.copy()
    tinted[labels == 1, ..., 2] += 40  # class 1 is bluer
    train = _tiles(tinted[:20], labels[:20])
    test = _tiles(tinted[20:], labels[20:])
    assert (C.baseline_predictions("mean RGB", train, test) == test.labels).mean() == 1.0
    blind_train, blind_test = _tiles(images[:20], labels[:20]), _tiles(images[20:], labels[20:])
    acc = (C.baseline_predictions("mean RGB", blind_train, blind_test) == blind_test.labels).mean()
    assert acc < 0.8


def test_accuracy_table_has_chance_and_intervals() -> None:
    results = pd.DataFrame(
        {
            "dataset": "synthetic-grading",
            "seed": [0] * 4 + [1] * 4,
            "unit": [0, 1, 2, 3] * 2,
            "tile": [0, 1, 2, 3] * 2,
            "method": "mean RGB",
            "label": 0,
            "value": [1, 0, 0, 0, 1, 1, 0, 0],
        }
    )
    row = C.accuracy_table(results, n_boot=200).iloc[0]
    assert row["accuracy"] == pytest.approx(3 / 8)
    assert row["chance"] == pytest.approx(1 / 7)
    assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
    assert row["test_tiles"] == 4 and row["seeds"] == "0 1"


# -- the bounds on the synthetic sets (the targets, measured at a reduced quick size) ----
SIZES = {
    "synthetic-he": C.CheckSizes(160, 4, 160),
    "synthetic-grading": C.CheckSizes(24, 1, 24),
    "synthetic-pcle": C.CheckSizes(30, 2, 30),
}
BOUNDS = {"mean intensity": 0.15, "mean RGB": 0.15, "outside-mask colour": 0.10}


@pytest.mark.parametrize("dataset", C.DATASETS)
def test_trivial_colour_baselines_stay_near_chance(dataset: str, tmp_path) -> None:
    results = C.check(dataset, 0, SIZES[dataset], store=Store(tmp_path), with_cnn=False)
    acc = results.groupby("method")["value"].mean()
    for method, bound in BOUNDS.items():
        assert abs(acc[method] - C.chance(dataset)) < bound, (method, acc[method])
    # the shape-blind histogram is reported, not bounded; it must at least be measured
    assert "colour histogram" in acc and C.CNN not in acc


@pytest.mark.slow
def test_small_cnn_learns_he_tumour_vs_normal(tmp_path) -> None:
    sizes = C.CheckSizes(400, 60, 200)
    results = C.check("synthetic-he", 0, sizes, store=Store(tmp_path), device="cpu")
    cnn = results[results["method"] == C.CNN]["value"].mean()
    assert cnn >= 0.90
    assert cnn > results[results["method"] == "mean RGB"]["value"].mean() + 0.3


@pytest.mark.slow
def test_small_cnn_learns_the_seven_grading_classes(tmp_path) -> None:
    sizes = C.CheckSizes(100, 15, 30)  # the data chapter's quick sizes, per class
    results = C.check("synthetic-grading", 0, sizes, store=Store(tmp_path), device="cpu")
    cnn = results[results["method"] == C.CNN]["value"].mean()
    assert cnn >= 0.90
    assert cnn > results[results["method"] == "mean RGB"]["value"].mean() + 0.5
