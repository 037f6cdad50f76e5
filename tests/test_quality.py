"""The thesis's post-processing and six quality metrics against hand-computed values."""

import warnings

import numpy as np
import pandas as pd
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


# -- the thesis's own computation (average="thesis") -----------------------------------------
# A 3 x 3 map (IG) and U-Net probability map. Map > 0.3: pixels (0,0), (1,0). Probability
# > 0.5: (0,0) only; after the thesis's min-max ((p - 0.1) / 0.5) >= 0.5: (0,0) and (1,0).
MAP3 = np.array([[0.9, 0.1, 0.0], [0.5, 0.2, 0.0], [0.0, 0.0, 0.0]])
PROB3 = np.array([[0.6, 0.2, 0.1], [0.4, 0.3, 0.1], [0.1, 0.1, 0.1]])
SIG1 = 1 / (1 + np.exp(-1.0))


def test_thesis_reading_scores_image_rows_by_hand():
    s = q.thesis_scores(MAP3, PROB3, "integrated_gradients")
    # rows: row 0 map {0} mask {0} -> 1; row 1 map {0}, no mask pixel -> 0; row 2 empty -> 0
    assert s["precision"] == pytest.approx(1 / 3)
    assert s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(1 / 3)
    # per column it would be: column 0 map {0, 1} mask {0} -> P 1/2, R 1, F1 2/3; others 0
    binary_map, binary_mask = MAP3 > 0.3, PROB3 > 0.5
    assert q.precision(binary_map, binary_mask, "columns") == pytest.approx(1 / 6)
    assert q.recall(binary_map, binary_mask, "columns") == pytest.approx(1 / 3)
    assert q.precision(binary_map, binary_mask, "rows") == pytest.approx(1 / 3)
    # the transpose: scoring the transposed arrays by columns is the thesis's reading
    assert q.precision(binary_map.T, binary_mask.T, "columns") == pytest.approx(1 / 3)
    # phi coefficient of the binary map and mask: TP 1, FP 1, FN 0, TN 7
    assert s["spearman"] == pytest.approx(7 / np.sqrt(2 * 1 * 8 * 7))
    assert s["pixel_accuracy"] == pytest.approx(8 / 9)


def test_thesis_iou_min_maxes_the_probability_map_before_the_threshold():
    s = q.thesis_scores(MAP3, PROB3, "integrated_gradients")
    # min-maxed mask: 2 pixels, both under the map -> inter 2 sigmoid(1), union 5.5, +1 each
    assert s["iou"] == pytest.approx((2 * SIG1 + 1) / 6.5)
    # without the min-max the mask would be 1 pixel: a different value
    raw = q.thesis_soft_iou(MAP3 > 0.3, PROB3 > 0.5)
    assert raw == pytest.approx((SIG1 + 1) / (SIG1 + 5.5))
    assert abs(s["iou"] - raw) > 0.05
    # a constant probability map min-maxes to NaN: no mask pixel at all
    flat = q.thesis_scores(MAP3, np.full((3, 3), 0.2), "integrated_gradients")
    assert flat["iou"] == pytest.approx(1 / (2 * SIG1 + 3.5 + 1))
    assert np.isnan(flat["spearman"])


def test_thesis_nan_cases_constant_maps():
    full = np.ones((3, 3))
    gc = q.thesis_scores(full, PROB3, "gradcam")
    # Grad-CAM and LIME are min-maxed after thresholding: a full map becomes NaN
    assert gc["pixel_accuracy"] == 0.0  # NaN == mask is never true
    assert np.isnan(gc["spearman"])
    assert gc["precision"] == gc["recall"] == gc["f1"] == 0.0  # nan_to_num -> empty map
    assert gc["iou"] == pytest.approx((0.5 * 2 + 1) / (4.5 + 2 - 1 + 1))  # map min-max NaN
    assert q.thesis_scores(full, PROB3, "lime")["pixel_accuracy"] == 0.0
    ig = q.thesis_scores(full, PROB3, "integrated_gradients")
    # IG and NT are not min-maxed again: the full map agrees with the one mask pixel
    assert ig["pixel_accuracy"] == pytest.approx(1 / 9)
    assert ig["precision"] == pytest.approx(1 / 9)  # row 0: 1/3, rows 1 and 2: 0
    assert np.isnan(ig["spearman"])
    # a non-constant LIME map scores like IG
    assert q.thesis_scores(MAP3, PROB3, "lime")["pixel_accuracy"] == pytest.approx(8 / 9)


def test_thesis_reading_in_score_maps_and_summarise_skips_nan():
    maps = np.stack([MAP3, np.ones((3, 3))])
    probs = np.stack([PROB3, PROB3])
    rows = q.score_maps(maps, {"tumour": probs}, average="thesis", method="gradcam")
    assert rows[0]["precision"] == pytest.approx(1 / 3) and not rows[0]["empty"]
    assert rows[1]["pixel_accuracy"] == 0.0 and np.isnan(rows[1]["spearman"])
    with pytest.raises(ValueError, match="needs the method"):
        q.score_maps(maps, {"tumour": probs}, average="thesis")
    with pytest.raises(ValueError, match="average must be one of"):
        q.score_maps(maps, {"tumour": probs}, average="micro")
    table = pd.DataFrame(rows)
    with pytest.raises(ValueError, match="NaN"):
        q.summarise(table, ["mask_type"], n_boot=20)
    out = q.summarise(table, ["mask_type"], n_boot=20, skip_nan=True).set_index("metric")
    assert out.loc["spearman", "n"] == 1 and out.loc["spearman", "n_nan"] == 1
    assert out.loc["spearman", "mean"] == pytest.approx(rows[0]["spearman"])
    assert out.loc["pixel_accuracy", "mean"] == pytest.approx(8 / 18)
    # an exact (binary) mask is read as probabilities 0 and 1; an empty one is flagged
    empty = q.score_maps(maps[:1], {"t": np.zeros((1, 3, 3), bool)}, "thesis", method="lime")
    assert empty[0]["empty"] and empty[0]["precision"] == 0.0
