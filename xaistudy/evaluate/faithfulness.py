"""Deletion curves, their AUC (Eq. 9), method rankings and ranking agreement (Eq. 10).

A deletion curve follows the tumour probability while the heatmap's masks are occluded one
after another: points at ``p = 0`` (nothing occluded) and after ``Mask_1..Mask_4``. As in the
paper, ``p`` is the occluded share of everything the masks will occlude (``relative``: Mask_4
is p = 1); ``absolute`` uses the share of all image pixels instead. A lower AUC means the
highlighted pixels mattered more. Methods are ranked by mean AUC (lowest first) per occlusion
strategy and compared with a ground-truth ranking (mean IoU with the tumour mask, highest
first) by MARD, rank accuracy and Kendall's tau.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


# -- curves and AUC -------------------------------------------------------------------------
def occluded_fractions(masks: np.ndarray, relative: bool = True) -> np.ndarray:
    """x positions (..., n + 1) of a deletion curve from nested masks (..., n, H, W).

    ``relative``: area / area of the last mask (the paper's "ratio of occluded regions to all
    identified regions"); when the last mask is empty the points are spread evenly on [0, 1].
    Otherwise area / all pixels.
    """
    masks = np.asarray(masks, dtype=bool)
    areas = masks.sum(axis=(-2, -1)).astype(np.float64)
    zeros = np.zeros((*areas.shape[:-1], 1))
    areas = np.concatenate([zeros, areas], axis=-1)
    if not relative:
        return areas / (masks.shape[-1] * masks.shape[-2])
    total = areas[..., -1:]
    even = np.broadcast_to(np.linspace(0, 1, areas.shape[-1]), areas.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(total > 0, areas / np.where(total > 0, total, 1), even)
    return rel


def trapezoid_auc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Trapezoid-rule area under ``y(x)`` along the last axis (Eq. 9)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"x has {x.shape[-1]} points, y has {y.shape[-1]}")
    if np.any(np.diff(x, axis=-1) < 0):
        raise ValueError("x must be non-decreasing along the last axis")
    return np.trapezoid(y, x, axis=-1)


# -- the ground-truth ranking ---------------------------------------------------------------
#: The rules of :func:`binarise` and the region each keeps.
BINARISE_RULES: dict[str, str] = {
    "threshold": "values >= `threshold` (maps in [0, 1])",
    "kmeans": "the k-means levels 1..`n_levels`",
    "otsu": "values above each map's Otsu threshold",
}


def binarise(
    heatmaps: np.ndarray,
    rule: str = "threshold",
    threshold: float = 0.5,
    levels: np.ndarray | None = None,
    n_levels: int = 2,
) -> np.ndarray:
    """The region a heatmap (..., H, W) points at, by ``rule``:

    ``threshold``: values >= ``threshold`` (maps in [0, 1]); ``kmeans``: the k-means levels
    1..``n_levels`` (needs ``levels``); ``otsu``: above each map's Otsu threshold.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float64)
    if rule == "threshold":
        return heatmaps >= threshold
    if rule == "kmeans":
        if levels is None:
            raise ValueError("rule 'kmeans' needs the k-means levels")
        return np.asarray(levels) <= n_levels
    if rule == "otsu":
        from skimage.filters import threshold_otsu

        flat = heatmaps.reshape(-1, *heatmaps.shape[-2:])
        out = [h >= threshold_otsu(h) if np.ptp(h) > 0 else np.zeros_like(h, bool) for h in flat]
        return np.stack(out).reshape(heatmaps.shape)
    raise ValueError(f"unknown binarisation rule '{rule}'; allowed: {', '.join(BINARISE_RULES)}")


# -- pixel deletion and insertion (Petsiuk et al. 2018) ---------------------------------------
def pixel_order_curves(
    score_fn: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    saliency: np.ndarray,
    steps: int = 16,
    baseline: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves (steps + 1 points each) of one map.

    Pixels are taken in decreasing order of ``saliency`` (H, W), ``1/steps`` of them at a time
    (ties broken by position). Deletion sets them to ``baseline`` in ``image`` (C, H, W);
    insertion starts from the baseline image and puts them back. ``score_fn`` maps a batch
    (N, C, H, W) to N scores (e.g. the target-class probability).
    """
    image = np.asarray(image, dtype=np.float32)
    saliency = np.asarray(saliency, dtype=np.float64)
    if saliency.shape != image.shape[-2:]:
        raise ValueError(f"map {saliency.shape} does not match image {image.shape[-2:]}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    order = np.argsort(-saliency.ravel(), kind="stable")
    counts = np.round(np.linspace(0, order.size, steps + 1)).astype(int)
    taken = np.zeros((steps + 1, order.size), bool)
    for k, n in enumerate(counts):
        taken[k, order[:n]] = True
    taken = taken.reshape(steps + 1, 1, *saliency.shape)
    base = np.full_like(image, baseline)
    deleted = np.where(taken, base[None], image[None])
    inserted = np.where(taken, image[None], base[None])
    scores = np.asarray(score_fn(np.concatenate([deleted, inserted])), dtype=np.float64)
    return scores[: steps + 1], scores[steps + 1 :]


def curve_auc(curve: np.ndarray) -> float:
    """Area under a deletion or insertion curve on evenly spaced points of [0, 1]."""
    curve = np.asarray(curve, dtype=np.float64)
    return float(trapezoid_auc(np.linspace(0, 1, curve.shape[-1]), curve))
