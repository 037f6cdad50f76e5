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
``"columns"``  what the thesis's code computed literally: it passed 2-D ``(H, W)`` arrays to
               sklearn, which reads them as *multilabel* data (rows = samples, columns =
               labels) and averages the binary score of every image column.

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

from xaistudy.evaluate.stats import bootstrap_ci

Average = Literal["binary", "macro", "columns"]
AVERAGES: tuple[str, ...] = ("binary", "macro", "columns")
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
    if average == "columns":
        if pred.ndim != 2:
            raise ValueError("average='columns' needs 2-D (H, W) masks")
        return float(
            np.mean([_column_score(metric, p, t) for p, t in zip(pred.T, truth.T, strict=True)])
        )
    raise ValueError(f"average must be one of {', '.join(AVERAGES)}, got {average!r}")


def _column_score(metric: str, pred: np.ndarray, truth: np.ndarray) -> float:
    """sklearn's multilabel per-label score: a zero denominator gives 0 (its default)."""
    tp, fp, fn, _ = _counts(pred, truth)
    den = {"iou": tp + fp + fn, "precision": tp + fp, "recall": tp + fn, "f1": 2 * tp + fp + fn}
    num = 2 * tp if metric == "f1" else tp
    return num / den[metric] if den[metric] > 0 else 0.0


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


def score_maps(
    maps: np.ndarray,
    masks: Mapping[str, np.ndarray],
    average: Average = "macro",
    threshold: float = MAP_THRESHOLD,
    spearman_on: Literal["binary", "continuous"] = "binary",
) -> list[dict[str, float | int | str | bool]]:
    """Rows ``{image, mask_type, degenerate, <six metrics>}`` for post-processed maps.

    ``maps``: (B, H, W) post-processed maps in [0, 1]; ``masks``: mask type -> (B, H, W)
    binary masks (e.g. ``{"tumour": ..., "non-tumour": ...}``).
    """
    maps = np.asarray(maps)
    rows: list[dict[str, float | int | str | bool]] = []
    for mask_type, mask in masks.items():
        mask = np.asarray(mask).astype(bool)
        if mask.shape != maps.shape:
            raise ValueError(f"mask '{mask_type}' has shape {mask.shape}, maps {maps.shape}")
        for i in range(len(maps)):
            pred = binarize(maps[i], threshold)
            cont = maps[i] if spearman_on == "continuous" else None
            rows.append(
                {
                    "image": i,
                    "mask_type": mask_type,
                    "degenerate": is_degenerate(pred, mask[i]),
                    **all_metrics(pred, mask[i], average, continuous=cont),
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
def summarise(
    rows: pd.DataFrame,
    by: list[str],
    metrics: tuple[str, ...] = METRICS,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Long table: ``by`` columns, metric, mean, bootstrap CI, n and n_degenerate.

    ``rows`` holds one row per (image, ...) with the metric columns and a boolean
    ``degenerate`` column (empty or full map or mask: the metric took its defined value).
    Raises ``ValueError`` if a metric column holds NaN, so none can leak into a table.
    """
    missing = [c for c in (*by, *metrics, "degenerate") if c not in rows.columns]
    if missing:
        raise ValueError(f"summarise: rows lack columns {missing}")
    if rows[list(metrics)].isna().any().any():
        raise ValueError("summarise: a metric is NaN; metrics must have defined values")
    out = []
    for keys, group in rows.groupby(by, sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        for metric in metrics:
            values = group[metric].to_numpy(dtype=np.float64)
            low, high = bootstrap_ci(values, n_boot=n_boot, seed=seed)
            out.append(
                {
                    **dict(zip(by, keys, strict=True)),
                    "metric": metric,
                    "mean": float(values.mean()),
                    "ci_low": low,
                    "ci_high": high,
                    "n": len(values),
                    "n_degenerate": int(group["degenerate"].sum()),
                }
            )
    return pd.DataFrame(out)
