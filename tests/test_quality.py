"""The thesis's post-processing and six quality metrics against hand-computed values."""

import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import f1_score, jaccard_score, precision_score, recall_score

from xaistudy.evaluate import quality as q

# 2 x 3 masks: TP = 1, FP = 1, FN = 1, TN = 3 (foreground); background: TP 3, FP 1, FN 1
PRED = np.array([[1, 1, 0], [0, 0, 0]], bool)
TRUTH = np.array([[1, 0, 0], [1, 0, 0]], bool)


def test_binary_metrics_by_hand():
    assert q.iou(PRED, TRUTH, "binary") == pytest.approx(1 / 3)
    assert q.precision(PRED, TRUTH, "binary") == pytest.approx(1 / 2)
    assert q.recall(PRED, TRUTH, "binary") == pytest.approx(1 / 2)
    assert q.f1(PRED, TRUTH, "binary") == pytest.approx(1 / 2)
    assert q.pixel_accuracy(PRED, TRUTH) == pytest.approx(4 / 6)


def test_macro_averages_foreground_and_background_by_hand():
    assert q.iou(PRED, TRUTH, "macro") == pytest.approx((1 / 3 + 3 / 5) / 2)
    assert q.precision(PRED, TRUTH, "macro") == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert q.recall(PRED, TRUTH, "macro") == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert q.f1(PRED, TRUTH, "macro") == pytest.approx((1 / 2 + 3 / 4) / 2)
    # macro is the default (the thesis's sklearn average="macro")
    assert q.precision(PRED, TRUTH) == q.precision(PRED, TRUTH, "macro")
    # pixel accuracy and Spearman do not depend on the averaging
    for avg in q.AVERAGES:
        assert q.pixel_accuracy(PRED, TRUTH, avg) == pytest.approx(4 / 6)
        assert q.spearman(PRED, TRUTH, avg) == pytest.approx(0.25)


def test_columns_average_by_hand_and_as_sklearn_reads_2d_arrays():
    # columns: (TP1 FN1), (FP1), (nothing) -> precision (1 + 0 + 0) / 3, recall (.5 + 0 + 0) / 3
    assert q.precision(PRED, TRUTH, "columns") == pytest.approx(1 / 3)
    assert q.recall(PRED, TRUTH, "columns") == pytest.approx(1 / 6)
    assert q.f1(PRED, TRUTH, "columns") == pytest.approx((2 / 3) / 3)
    rng = np.random.default_rng(1)
    for _ in range(5):
        p = rng.random((12, 9)) > 0.6
        t = rng.random((12, 9)) > 0.5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = {"average": "macro", "zero_division": 0}
            assert q.precision(p, t, "columns") == pytest.approx(
                precision_score(t.astype(int), p.astype(int), **kw)
            )
            assert q.recall(p, t, "columns") == pytest.approx(
                recall_score(t.astype(int), p.astype(int), **kw)
            )
            assert q.f1(p, t, "columns") == pytest.approx(
                f1_score(t.astype(int), p.astype(int), **kw)
            )


@pytest.mark.parametrize("seed", range(4))
def test_binary_and_macro_match_sklearn_on_flattened_masks(seed):
    rng = np.random.default_rng(seed)
    p = rng.random((16, 16)) > 0.7
    t = rng.random((16, 16)) > 0.4
    yt, yp = t.ravel(), p.ravel()
    for avg in ("binary", "macro"):
        assert q.iou(p, t, avg) == pytest.approx(jaccard_score(yt, yp, average=avg))
        assert q.precision(p, t, avg) == pytest.approx(precision_score(yt, yp, average=avg))
        assert q.recall(p, t, avg) == pytest.approx(recall_score(yt, yp, average=avg))
        assert q.f1(p, t, avg) == pytest.approx(f1_score(yt, yp, average=avg))


def test_spearman_equals_scipy_for_binary_and_continuous_maps():
    rng = np.random.default_rng(0)
    t = rng.random((10, 10)) > 0.5
    for p in (rng.random((10, 10)) > 0.3, rng.random((10, 10)), np.round(rng.random((10, 10)), 1)):
        assert q.spearman(p, t) == pytest.approx(spearmanr(p.ravel(), t.ravel()).statistic)
    # phi coefficient by hand: (TP TN - FP FN) / sqrt(...) = (3 - 1) / 8
    assert q.spearman(PRED, TRUTH) == pytest.approx(0.25)


EMPTY = np.zeros((4, 4), bool)
FULL = np.ones((4, 4), bool)


@pytest.mark.parametrize("average", ["binary", "macro"])
def test_empty_and_full_masks_have_defined_values(average):
    # both empty: perfect agreement on "nothing"
    for m in ("iou", "precision", "recall", "f1"):
        assert q.METRIC_FUNCTIONS[m](EMPTY, EMPTY, average) == 1.0
    assert q.pixel_accuracy(EMPTY, EMPTY) == 1.0
    assert q.spearman(EMPTY, EMPTY) == 0.0
    # full map, empty mask: everything wrong
    for m in ("iou", "precision", "recall", "f1", "pixel_accuracy"):
        assert q.METRIC_FUNCTIONS[m](FULL, EMPTY, average) == 0.0
    # empty map, full mask: nothing found
    for m in ("iou", "precision", "recall", "f1", "pixel_accuracy"):
        assert q.METRIC_FUNCTIONS[m](EMPTY, FULL, average) == 0.0
    # empty map, partial mask: precision's denominator is zero -> 0, never NaN
    part = EMPTY.copy()
    part[0, 0] = True
    values = q.all_metrics(EMPTY, part, average)
    assert all(np.isfinite(v) for v in values.values())
    assert values["spearman"] == 0.0
    assert values["pixel_accuracy"] == pytest.approx(15 / 16)


def test_degenerate_pairs_are_flagged():
    assert q.is_degenerate(EMPTY, PRED[:1, :1].repeat(4, 0).repeat(4, 1) | FULL)
    assert q.is_degenerate(PRED, np.zeros_like(TRUTH))
    assert not q.is_degenerate(PRED, TRUTH)


def test_postprocess_by_hand():
    a = np.zeros((3, 2, 2))
    a[0] = [[-2, 0], [1, 1]]  # |a| -> [[2, 0], [1, 1]] -> [[1, 0], [.5, .5]]
    a[1] = 3.0  # constant channel -> zeros (not NaN)
    a[2] = [[0, 0], [0, 4]]  # -> [[0, 0], [0, 1]]
    # sum [[1, 0], [.5, 1.5]] -> min-max
    expected = np.array([[2 / 3, 0], [1 / 3, 1]])
    np.testing.assert_allclose(q.postprocess(a), expected)
    # a single map: |m| min-max scaled
    np.testing.assert_allclose(
        q.postprocess(np.array([[-1.0, 0.5], [0, 0.25]])), [[1, 0.5], [0, 0.25]]
    )
    # a constant map becomes zeros, so it is binarised to "nothing highlighted"
    assert not q.binarize(q.postprocess(np.ones((3, 4, 4)))).any()


def test_postprocess_matches_an_independent_vectorised_version():
    rng = np.random.default_rng(3)
    batch = rng.normal(size=(4, 3, 8, 8))
    absb = np.abs(batch)
    lo = absb.min(axis=(2, 3), keepdims=True)
    hi = absb.max(axis=(2, 3), keepdims=True)
    s = ((absb - lo) / (hi - lo)).sum(1)
    expected = (s - s.min(axis=(1, 2), keepdims=True)) / np.ptp(s, axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(q.postprocess_batch(batch), expected)


def test_binarize_is_strict_at_the_threshold():
    np.testing.assert_array_equal(q.binarize(np.array([0.29, 0.3, 0.31])), [False, False, True])


def test_thesis_soft_iou_by_hand():
    # sigmoid(1) = 0.7311, sigmoid(0) = 0.5; inter 0.7311, union 1.2311 + 1 - 0.7311 = 1.5
    s1 = 1 / (1 + np.exp(-1))
    expected = (s1 + 1) / (0.5 + s1 + 1 - s1 + 1)
    assert q.thesis_soft_iou(np.array([1, 0]), np.array([1, 0])) == pytest.approx(expected)


def test_score_maps_rows():
    maps = np.stack([np.where(PRED, 0.9, 0.1), np.full((2, 3), 0.2)])
    masks = {"tumour": np.stack([TRUTH, TRUTH]), "non-tumour": np.stack([~TRUTH, ~TRUTH])}
    rows = q.score_maps(maps, masks, average="binary")
    assert len(rows) == 4
    first = rows[0]
    assert (first["mask_type"], first["image"], first["degenerate"]) == ("tumour", 0, False)
    assert first["iou"] == pytest.approx(1 / 3)
    assert rows[1]["degenerate"] and rows[1]["precision"] == 0.0  # empty map vs mask


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: q.iou(PRED, TRUTH[:, :2]), "shapes differ"),
        (lambda: q.iou(PRED.astype(float) * 0.5, TRUTH), "must be binary"),
        (lambda: q.iou(PRED, TRUTH, "micro"), "average must be one of"),
        (lambda: q.postprocess(np.full((2, 2), np.nan)), "NaN"),
        (lambda: q.postprocess(np.zeros((1, 1, 2, 2))), "expects"),
        (lambda: q.precision(PRED.ravel(), TRUTH.ravel(), "columns"), "2-D"),
        (lambda: q.spearman(np.array([0.1, np.nan]), np.array([0, 1])), "NaN"),
    ],
)
def test_bad_input_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_score_maps_spearman_on_the_continuous_map():
    rng = np.random.default_rng(5)
    maps = rng.random((2, 6, 6))
    truth = rng.random((2, 6, 6)) > 0.5
    rows = q.score_maps(maps, {"tumour": truth}, spearman_on="continuous")
    for i, row in enumerate(rows):
        expected = spearmanr(maps[i].ravel(), truth[i].ravel()).statistic
        assert row["spearman"] == pytest.approx(expected)
        assert row["spearman"] != pytest.approx(q.spearman(q.binarize(maps[i]), truth[i]))
