"""Interpretation-quality metrics of Valatkaitė's thesis: post-processing and six metrics.

Post-processing (appendix code): a pixel attribution (C, H, W) is made non-negative (absolute
value), each channel is min-max scaled, the channels are summed and the sum is min-max scaled
again; a single-channel map (Grad-CAM, LIME) is the absolute value, min-max scaled. The map is
then binarised with ``map > 0.3`` and the segmentation probability with ``mask > 0.5``.

Metrics compare a binary map ``pred`` with a binary ground-truth mask ``truth``:
IoU, precision, recall, F1, Spearman's rank correlation and pixel accuracy.

``average`` decides what "the" score of a pair of masks is:

``"binary"``   the foreground (value 1) class only;
``"macro"``    the unweighted mean of the foreground and the background class (sklearn's
               ``average="macro"`` on the flattened masks) — the thesis's ``average=`` choice;
``"columns"``  sklearn's reading of 2-D ``(H, W)`` arrays as *multilabel* data (rows =
               samples, columns = labels): the mean binary score of every image column;
``"rows"``     the same per image *row* (``"columns"`` of the transposed arrays);
``"thesis"``   the appendix code as it ran (:func:`thesis_scores`): its
               ``np.rot90(np.flip(x, 1), 1)`` is a transpose, so its sklearn calls score the
               image rows; its IoU module min-maxes the U-Net probability map before the
               0.5 threshold, passes the binary map through a sigmoid and adds 1 to numerator
               and denominator; a constant binary map or mask gives NaN in Spearman's
               correlation and, for LIME and Grad-CAM (min-maxed again after thresholding),
               a pixel accuracy of 0 through a NaN map.

Degenerate cases have defined values, never NaN: a ratio whose denominator is zero (no
predicted pixel for precision, no true pixel for recall, empty union for IoU, both for F1) is
1.0 when *both* masks are empty (agreement on "nothing") and 0.0 otherwise; Spearman's rank
correlation of a constant map or mask (no ranking to compare) is 0.0. :func:`is_degenerate`
tells which pairs hit such a case, so tables can report how many there were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from xaistudy.stats.bootstrap import percentile_interval, resamples

Average = Literal["binary", "macro", "columns", "rows"]
AVERAGES: tuple[str, ...] = ("binary", "macro", "columns", "rows")
#: every reading of the scores: the thesis's computation, then the plain averages
READINGS: tuple[str, ...] = ("thesis", *AVERAGES)
METRICS: tuple[str, ...] = ("iou", "precision", "recall", "f1", "spearman", "pixel_accuracy")
METRIC_LABELS: dict[str, str] = {
    "iou": "IoU",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1-score",
    "spearman": "Spearman's ρ",
    "pixel_accuracy": "Pixel accuracy",
}
#: The thesis's thresholds (appendix: ``intrp_treshold``, ``seg_treshold``).
MAP_THRESHOLD = 0.3
MASK_THRESHOLD = 0.5


# -- post-processing ------------------------------------------------------------------------
def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def minmax(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(x - min) / (max - min)``; a constant array becomes all zeros (not NaN)."""
    x = _as_numpy(x)
    if not np.all(np.isfinite(x)):
        raise ValueError("minmax: the map contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def postprocess(attribution: np.ndarray | torch.Tensor) -> np.ndarray:
    """The thesis's map post-processing: |a|, per-channel min-max, channel sum, min-max.

    ``attribution``: (C, H, W) for pixel attributions (IG, NoiseTunnel) or (H, W) for a
    single map (Grad-CAM, LIME). Returns (H, W) float64 in [0, 1].
    """
    a = np.abs(_as_numpy(attribution))
    if a.ndim == 2:
        return minmax(a)
    if a.ndim != 3:
        raise ValueError(f"postprocess expects (C, H, W) or (H, W), got shape {a.shape}")
    return minmax(sum(minmax(channel) for channel in a))


def postprocess_batch(attributions: np.ndarray | torch.Tensor) -> np.ndarray:
    """:func:`postprocess` of every item of a (B, C, H, W) or (B, H, W) batch -> (B, H, W)."""
    a = _as_numpy(attributions)
    if a.ndim not in (3, 4):
        raise ValueError(f"postprocess_batch expects (B, C, H, W) or (B, H, W), got {a.shape}")
    return np.stack([postprocess(item) for item in a]) if len(a) else np.zeros((0, 0, 0))


def binarize(x: np.ndarray | torch.Tensor, threshold: float = MAP_THRESHOLD) -> np.ndarray:
    """``x > threshold`` as a bool array (strict, as in the thesis's ``prep_numpy``)."""
    return _as_numpy(x) > threshold


# -- the six metrics ------------------------------------------------------------------------
def _pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"map and mask shapes differ: {pred.shape} vs {truth.shape}")
    if pred.size == 0:
        raise ValueError("map and mask are empty arrays")
    for name, arr in (("map", pred), ("mask", truth)):
        if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
            raise ValueError(f"the {name} must be binary (bool or 0/1); binarize it first")
    return pred.astype(bool), truth.astype(bool)


def _ratio(num: float, den: float, both_empty: bool) -> float:
    if den > 0:
        return num / den
    return 1.0 if both_empty else 0.0


def _counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, int]:
    """TP, FP, FN, TN of boolean arrays."""
    tp = int(np.sum(pred & truth))
    fp = int(np.sum(pred & ~truth))
    fn = int(np.sum(~pred & truth))
    tn = int(pred.size - tp - fp - fn)
    return tp, fp, fn, tn


def _binary_score(metric: str, pred: np.ndarray, truth: np.ndarray) -> float:
    tp, fp, fn, _ = _counts(pred, truth)
    both_empty = tp + fp + fn == 0
    if metric == "iou":
        return _ratio(tp, tp + fp + fn, both_empty)
    if metric == "precision":
        return _ratio(tp, tp + fp, both_empty)
    if metric == "recall":
        return _ratio(tp, tp + fn, both_empty)
    if metric == "f1":
        return _ratio(2 * tp, 2 * tp + fp + fn, both_empty)
    raise ValueError(f"unknown overlap metric {metric!r}")


def _averaged(metric: str, pred: np.ndarray, truth: np.ndarray, average: str) -> float:
    pred, truth = _pair(pred, truth)
    if average == "binary":
        return _binary_score(metric, pred, truth)
    if average == "macro":
        return 0.5 * (_binary_score(metric, pred, truth) + _binary_score(metric, ~pred, ~truth))
    if average in ("columns", "rows"):
        if pred.ndim != 2:
            raise ValueError(f"average='{average}' needs 2-D (H, W) masks")
        return _line_average(metric, pred, truth, axis=0 if average == "columns" else 1)
    raise ValueError(f"average must be one of {', '.join(AVERAGES)}, got {average!r}")


def _line_average(metric: str, pred: np.ndarray, truth: np.ndarray, axis: int) -> float:
    """Mean over the image columns (``axis=0``) or rows (1) of each line's binary score as
    sklearn scores a multilabel label: a zero denominator gives 0 (its default)."""
    tp = np.sum(pred & truth, axis=axis)
    fp = np.sum(pred & ~truth, axis=axis)
    fn = np.sum(~pred & truth, axis=axis)
    den = {"iou": tp + fp + fn, "precision": tp + fp, "recall": tp + fn, "f1": 2 * tp + fp + fn}
    num = 2 * tp if metric == "f1" else tp
    d = den[metric]
    return float(np.mean(np.where(d > 0, num / np.maximum(d, 1), 0.0)))


def iou(pred: np.ndarray, truth: np.ndarray, average: Average = "macro") -> float:
    """Intersection over union (Jaccard index) of two binary masks."""
    return _averaged("iou", pred, truth, average)


def precision(pred: np.ndarray, truth: np.ndarray, average: Average = "macro") -> float:
    """TP / (TP + FP): how much of the map lies on the mask."""
    return _averaged("precision", pred, truth, average)


def recall(pred: np.ndarray, truth: np.ndarray, average: Average = "macro") -> float:
    """TP / (TP + FN): how much of the mask the map covers."""
    return _averaged("recall", pred, truth, average)


def f1(pred: np.ndarray, truth: np.ndarray, average: Average = "macro") -> float:
    """2 TP / (2 TP + FP + FN), the Dice coefficient."""
    return _averaged("f1", pred, truth, average)


def pixel_accuracy(pred: np.ndarray, truth: np.ndarray, average: Average = "macro") -> float:
    """Share of pixels on which map and mask agree (``average`` does not change it)."""
    pred, truth = _pair(pred, truth)
    return float(np.mean(pred == truth))


def spearman(pred: np.ndarray, truth: np.ndarray, average: Average = "macro") -> float:
    """Spearman's rank correlation of the flattened map and mask (0.0 if either is constant).

    ``pred`` may be binary (as in the thesis) or a continuous map; ``truth`` is binary.
    ``average`` does not change it.
    """
    if np.shape(pred) != np.shape(truth):
        raise ValueError(f"map and mask shapes differ: {np.shape(pred)} vs {np.shape(truth)}")
    _, t = _pair(np.asarray(truth), np.asarray(truth))
    p, t = _as_numpy(pred).ravel(), t.ravel().astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise ValueError("spearman: the map contains NaN or infinite values")
    if np.ptp(p) == 0 or np.ptp(t) == 0:
        return 0.0
    return float(spearmanr(p, t).statistic)


METRIC_FUNCTIONS: dict[str, Callable[..., float]] = {
    "iou": iou,
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "spearman": spearman,
    "pixel_accuracy": pixel_accuracy,
}


def is_degenerate(pred: np.ndarray, truth: np.ndarray) -> bool:
    """True when the map or the mask is empty or full (a score then takes a defined value)."""
    pred, truth = _pair(pred, truth)
    return bool(pred.all() or not pred.any() or truth.all() or not truth.any())


def all_metrics(
    pred: np.ndarray,
    truth: np.ndarray,
    average: Average = "macro",
    continuous: np.ndarray | None = None,
) -> dict[str, float]:
    """The six metrics of one binary map against one binary mask.

    ``continuous``: when given, Spearman's correlation uses this (unthresholded) map instead
    of the binary ``pred`` (the thesis correlated the binary map).
    """
    out = {m: METRIC_FUNCTIONS[m](pred, truth, average) for m in METRICS if m != "spearman"}
    out["spearman"] = spearman(pred if continuous is None else continuous, truth)
    return {m: out[m] for m in METRICS}


def thesis_soft_iou(pred: np.ndarray, truth: np.ndarray, smooth: float = 1.0) -> float:
    """IoU exactly as the thesis's ``Iou`` module computed it, for comparison only.

    That module applied a sigmoid to the already binary map (0 -> 0.5, 1 -> 0.73) and added
    ``smooth`` to numerator and denominator, which pulls every method toward the same value.
    """
    pred, truth = _pair(pred, truth)
    s = 1.0 / (1.0 + np.exp(-pred.astype(np.float64)))
    inter = float(np.sum(s * truth))
    union = float(np.sum(s) + np.sum(truth) - inter)
    return (inter + smooth) / (union + smooth)


#: methods whose map the thesis min-maxed again after thresholding (single-channel maps)
THESIS_RESCALED: tuple[str, ...] = ("lime", "gradcam")


def _minmax_nan(x: np.ndarray) -> np.ndarray:
    """``(x - min) / (max - min)`` as numpy computes it: NaN everywhere for a constant ``x``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x - x.min()) / (x.max() - x.min())


def _spearman_nan(a: np.ndarray, b: np.ndarray) -> float:
    """scipy's ``spearmanr`` as the thesis called it: NaN for a constant or NaN input."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def thesis_scores(
    heatmap: np.ndarray,
    probability: np.ndarray,
    method: str,
    map_threshold: float = MAP_THRESHOLD,
    mask_threshold: float = MASK_THRESHOLD,
) -> dict[str, float]:
    """The six metrics of one map exactly as the thesis's appendix code computes them.

    ``heatmap``: the post-processed (H, W) map in [0, 1]; ``probability``: the U-Net's (H, W)
    probability map of one mask type (a binary mask is read as probabilities 0 and 1);
    ``method``: LIME and Grad-CAM (:data:`THESIS_RESCALED`) are min-maxed again after
    thresholding. Follows the code step by step:

    - IoU (``return_tensor`` + ``Iou``): min-max map and probabilities (NaN when constant,
      then no pixel passes), ``>=`` the thresholds, sigmoid of the binary map, +1 smoothing;
    - precision, recall, F1 (``prep_numpy`` + sklearn ``average="macro"``): ``rot90(flip(x,
      1), 1)`` = transpose, ``>`` the thresholds, the 2-D arrays read as multilabel data: the
      mean per-label score over the *rows* of the image, 0 where a denominator is 0; LIME and
      Grad-CAM maps go through ``nan_to_num(minmax(binary))`` (a constant map becomes empty);
    - Spearman (``prep_flatten_numpy`` + ``spearmanr``): NaN when the map or mask is constant;
    - pixel accuracy: share of equal pixels; a constant LIME or Grad-CAM map is NaN after its
      min-max, so no pixel equals the mask and the accuracy is 0.
    """
    m = np.asarray(heatmap, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    if m.shape != p.shape or m.ndim != 2:
        raise ValueError(f"map and probability map must be equal 2-D shapes: {m.shape}, {p.shape}")
    if method not in THESIS_METHODS:
        raise ValueError(f"method must be one of {', '.join(THESIS_METHODS)}, got {method!r}")
    iou_value = thesis_soft_iou(_minmax_nan(m) >= map_threshold, _minmax_nan(p) >= mask_threshold)
    mt = (m.T > map_threshold).astype(np.float64)  # rot90(flip(x, 1), 1) == x.T
    pt = p.T > mask_threshold
    rescaled = _minmax_nan(mt) if method in THESIS_RESCALED else mt
    prf = np.nan_to_num(rescaled) > 0.5
    out = {k: _averaged(k, prf, pt, "columns") for k in ("precision", "recall", "f1")}
    return {
        "iou": iou_value,
        **out,
        "spearman": _spearman_nan(rescaled, pt),
        "pixel_accuracy": float(np.mean(pt == rescaled)),
    }


def score_maps(
    maps: np.ndarray,
    masks: Mapping[str, np.ndarray],
    average: str = "macro",
    threshold: float = MAP_THRESHOLD,
    spearman_on: Literal["binary", "continuous"] = "binary",
    method: str | None = None,
    mask_threshold: float = MASK_THRESHOLD,
) -> list[dict[str, float | int | str | bool]]:
    """Rows ``{image, mask_type, degenerate, empty, <six metrics>}`` for post-processed maps.

    ``maps``: (B, H, W) post-processed maps in [0, 1]; ``masks``: mask type -> (B, H, W)
    binary masks (e.g. ``{"tumour": ..., "non-tumour": ...}``), or, for ``average="thesis"``
    (:func:`thesis_scores`, which needs ``method``), probability maps in [0, 1] that are
    thresholded at ``mask_threshold``. ``empty``: the (thresholded) mask has no pixel.
    """
    if average not in READINGS:
        raise ValueError(f"average must be one of {', '.join(READINGS)}, got {average!r}")
    if average == "thesis" and method is None:
        raise ValueError("average='thesis' needs the method (LIME and Grad-CAM differ)")
    maps = np.asarray(maps)
    rows: list[dict[str, float | int | str | bool]] = []
    for mask_type, mask in masks.items():
        mask = np.asarray(mask)
        if mask.shape != maps.shape:
            raise ValueError(f"mask '{mask_type}' has shape {mask.shape}, maps {maps.shape}")
        binary = mask > mask_threshold if mask.dtype != bool else mask
        for i in range(len(maps)):
            pred = binarize(maps[i], threshold)
            if average == "thesis":
                metrics = thesis_scores(maps[i], mask[i], method, threshold, mask_threshold)
            else:
                cont = maps[i] if spearman_on == "continuous" else None
                metrics = all_metrics(pred, binary[i], average, continuous=cont)
            rows.append(
                {
                    "image": i,
                    "mask_type": mask_type,
                    "degenerate": is_degenerate(pred, binary[i]),
                    "empty": not binary[i].any(),
                    **{m: metrics[m] for m in METRICS},
                }
            )
    return rows


# -- the thesis's four interpretations, post-processed --------------------------------------
#: The thesis's methods, as named by :func:`xaistudy.explain.explain`.
THESIS_METHODS: tuple[str, ...] = ("integrated_gradients", "ig_noise_tunnel", "lime", "gradcam")


def interpretation_maps(
    method: str,
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: list[int],
    layer: torch.nn.Module | None = None,
    **options: object,
) -> np.ndarray:
    """Post-processed maps (B, H, W) in [0, 1] of one of :data:`THESIS_METHODS`.

    Pixel attributions come from :func:`xaistudy.explain.attribute` as (B, C, H, W) so that
    the per-channel post-processing applies; Grad-CAM from :func:`xaistudy.explain.explain`
    on ``layer``. LIME's map holds the weights of the kept superpixels; the thesis used
    ``get_image_and_mask``, whose mask is +-1 on the kept superpixels, so every kept
    superpixel becomes 1 here before post-processing.
    """
    from xaistudy.explain import attribute, explain

    if method not in THESIS_METHODS:
        raise ValueError(f"method must be one of {', '.join(THESIS_METHODS)}, got {method!r}")
    if method == "gradcam":
        if layer is None:
            raise ValueError("gradcam needs the layer to hook (the last convolution)")
        raw: np.ndarray | torch.Tensor = explain("gradcam", model, inputs, targets, layer=layer)
    else:
        raw = attribute(method, model, inputs, targets, **options)
        if method == "lime":
            raw = (raw != 0).float()
    return postprocess_batch(raw).astype(np.float32)


# -- tables -----------------------------------------------------------------------------------
def _bootstrap_means(
    group: pd.DataFrame, values: np.ndarray, unit: str, seed_column: str, n_boot: int, seed: int
) -> np.ndarray:
    """(n_boot, k): the mean of the finite values of each column of ``values`` (the rows of
    ``group``) on each of the book's bootstrap draws (:func:`xaistudy.stats.bootstrap.resamples`:
    seeds, then units within each drawn seed; the draws of ``bootstrap_draws``)."""
    finite = np.isfinite(values)
    filled = np.where(finite, values, 0.0)
    out = np.empty((n_boot, values.shape[1]))
    draws = resamples(group, unit=unit, seed_column=seed_column, n_boot=n_boot, rng_seed=seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        for b, index in enumerate(draws):
            out[b] = filled[index].sum(axis=0) / finite[index].sum(axis=0)
    return out


def summarise(
    rows: pd.DataFrame,
    by: list[str],
    metrics: tuple[str, ...] = METRICS,
    n_boot: int = 1000,
    seed: int = 0,
    skip_nan: bool = False,
    unit: str = "unit",
    seed_column: str = "seed",
) -> pd.DataFrame:
    """Long table: ``by`` columns, metric, mean, bootstrap CI, n, n_nan and n_degenerate.

    ``rows`` holds one row per (image, ...) with the metric columns and a boolean
    ``degenerate`` column (empty or full map or mask: the metric took its defined value).
    The 95 % interval is the book's bootstrap: the seeds (``seed_column``) are resampled, then
    the units (``unit``, e.g. test tiles) within each drawn seed, every metric on the same
    draws (``seed`` seeds the draws); rows without a ``seed_column`` are one seed, rows without
    a ``unit`` column each their own unit.
    Raises ``ValueError`` if a metric column holds NaN, so none can leak into a table,
    unless ``skip_nan`` (the thesis reading, whose Spearman is NaN for constant maps): then
    the mean and interval are over the defined values and ``n_nan`` counts the others.
    """
    missing = [c for c in (*by, *metrics, "degenerate") if c not in rows.columns]
    if missing:
        raise ValueError(f"summarise: rows lack columns {missing}")
    if not skip_nan and rows[list(metrics)].isna().any().any():
        raise ValueError("summarise: a metric is NaN; metrics must have defined values")
    rows = rows.reset_index(drop=True)
    if seed_column not in rows:
        rows = rows.assign(**{seed_column: 0})
    if unit not in rows:
        rows = rows.assign(**{unit: np.arange(len(rows))})
    out = []
    for keys, group in rows.groupby(by, sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        values = group[list(metrics)].to_numpy(dtype=np.float64)
        draws = _bootstrap_means(group, values, unit, seed_column, n_boot, seed)
        for k, metric in enumerate(metrics):
            defined = values[:, k][np.isfinite(values[:, k])]
            low, high = percentile_interval(draws[:, k]) if len(defined) else (np.nan,) * 2
            out.append(
                {
                    **dict(zip(by, keys, strict=True)),
                    "metric": metric,
                    "mean": float(defined.mean()) if len(defined) else float("nan"),
                    "ci_low": low,
                    "ci_high": high,
                    "n": len(defined),
                    "n_nan": len(values) - len(defined),
                    "n_degenerate": int(group["degenerate"].sum()),
                }
            )
    return pd.DataFrame(out)
