"""Localisation of a saliency map against a ground-truth mask.

Three measures, each a plain function of one map ``(H, W)`` and one mask ``(H, W)``:

* :func:`pointing_game` (Zhang et al. 2018): is the map's maximum inside the mask? (ties
  count as the share of the tied maxima inside),
* :func:`iou` of a binarised map with the mask, after one of the documented
  :data:`BINARISE_RULES` (:func:`binarise`),
* :func:`positive_share`: the share of the map's positive mass that lies inside the mask.

Signed maps (positive = evidence for the class) are reduced to their positive part before
binarising; negative evidence is never counted as "pointing at" the mask.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

log = logging.getLogger(__name__)

BinariseRule = Literal["mask_area", "top_fraction", "otsu", "threshold"]

#: The binarisation rules of :func:`binarise` and what each keeps.
BINARISE_RULES: dict[str, str] = {
    "mask_area": "the k highest pixels, k = the number of pixels in the ground-truth mask",
    "top_fraction": "the highest `value` fraction of the pixels (e.g. 0.2 = top 20 %)",
    "otsu": "pixels above Otsu's threshold of the positive part of the map",
    "threshold": "pixels above `value` times the map's maximum",
}


def _check_pair(saliency: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    saliency = np.asarray(saliency, dtype=np.float64)
    if saliency.ndim != 2:
        raise ValueError(f"saliency must be a 2-D map (H, W), got shape {saliency.shape}")
    if not np.isfinite(saliency).all():
        raise ValueError("saliency contains NaN or infinite values")
    if mask is not None and np.shape(mask) != saliency.shape:
        raise ValueError(
            f"mask shape {np.shape(mask)} differs from saliency shape {saliency.shape}"
        )
    return saliency


def pointing_game(saliency: np.ndarray, mask: np.ndarray, tolerance: int = 0) -> float:
    """Hit (1.0) when the map's maximum lies in ``mask`` dilated by ``tolerance`` px, else 0.0.

    Ties (a plateau, e.g. the top superpixel of LIME, or a constant map) are broken uniformly
    at random, in expectation: the score is the share of the maximal pixels that lie in the
    (dilated) mask. A unique maximum scores exactly 0 or 1; a constant map scores the mask's
    area share (chance). An empty mask is an error (there is nothing to point at).
    """
    saliency = _check_pair(saliency, mask)
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("pointing_game needs a non-empty mask")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 pixels, got {tolerance}")
    if tolerance > 0:
        yy, xx = np.mgrid[-tolerance : tolerance + 1, -tolerance : tolerance + 1]
        disc = yy**2 + xx**2 <= tolerance**2
        mask = ndimage.binary_dilation(mask, structure=disc)
    peaks = saliency == saliency.max()
    return float(mask[peaks].mean())


def binarise(
    saliency: np.ndarray,
    rule: BinariseRule = "mask_area",
    value: float | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """A boolean map of the salient pixels by ``rule`` (see :data:`BINARISE_RULES`).

    Only the positive part of the map can be salient: a pixel with value <= 0 is never kept,
    so a map without positive values binarises to an empty map. ``mask_area`` needs ``mask``;
    ``top_fraction`` and ``threshold`` need ``value`` in (0, 1]. Ties at the cut are kept.
    """
    saliency = _check_pair(saliency, mask)
    positive = np.clip(saliency, 0.0, None)
    if rule not in BINARISE_RULES:
        raise ValueError(
            f"unknown binarisation rule {rule!r}; allowed: {', '.join(BINARISE_RULES)}"
        )
    if positive.max() <= 0:
        return np.zeros(saliency.shape, dtype=bool)
    if rule == "otsu":
        if np.ptp(positive) == 0:
            return positive > 0
        return positive > threshold_otsu(positive)
    if rule == "mask_area":
        if mask is None:
            raise ValueError("rule 'mask_area' needs the mask")
        k = int(np.asarray(mask, dtype=bool).sum())
        if k == 0:
            return np.zeros(saliency.shape, dtype=bool)
        cut = np.sort(positive, axis=None)[-k]
        return (positive >= cut) & (positive > 0)
    if value is None or not 0.0 < value <= 1.0:
        raise ValueError(f"rule {rule!r} needs value in (0, 1], got {value!r}")
    if rule == "top_fraction":
        k = max(1, int(round(value * positive.size)))
        cut = np.sort(positive, axis=None)[-k]
        return (positive >= cut) & (positive > 0)
    return positive > value * positive.max()  # "threshold"


def iou(pred: np.ndarray, truth: np.ndarray, *, empty: float = np.nan) -> np.ndarray | float:
    """Intersection over union of boolean maps over the last two axes (the book's one IoU of two
    regions): a float for two (H, W) maps, an array for stacks (..., H, W); ``empty`` where
    both are empty (NaN: undefined; 0: nothing matched). Shapes must match after broadcasting."""
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    try:
        shape = np.broadcast_shapes(pred.shape, truth.shape)
    except ValueError:
        raise ValueError(f"shapes differ: {pred.shape} vs {truth.shape}") from None
    if pred.ndim < 2 or len(shape) < 2:
        raise ValueError(f"iou needs (..., H, W) maps, got {pred.shape} and {truth.shape}")
    inter = (pred & truth).sum(axis=(-2, -1)).astype(np.float64)
    union = (pred | truth).sum(axis=(-2, -1)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1), empty)
    return float(out) if out.ndim == 0 else out


def saliency_iou(
    saliency: np.ndarray,
    mask: np.ndarray,
    rule: BinariseRule = "mask_area",
    value: float | None = None,
) -> float:
    """IoU of ``binarise(saliency, rule, value, mask)`` with ``mask``."""
    return iou(binarise(saliency, rule, value, mask=mask), mask, empty=0.0)


def positive_share(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Share of the positive saliency mass inside ``mask`` (NaN when the map has none)."""
    saliency = _check_pair(saliency, mask)
    positive = np.clip(saliency, 0.0, None)
    total = positive.sum()
    if total <= 0:
        return float("nan")
    return float(positive[np.asarray(mask, dtype=bool)].sum() / total)


def localisation_scores(
    saliency: np.ndarray,
    mask: np.ndarray,
    rule: BinariseRule = "mask_area",
    value: float | None = None,
    tolerance: int = 0,
) -> dict[str, float]:
    """Pointing-game score (0/1, or the share of tied maxima), IoU and positive share."""
    return {
        "pointing_game": pointing_game(saliency, mask, tolerance),
        "iou": saliency_iou(saliency, mask, rule, value),
        "positive_share": positive_share(saliency, mask),
    }


def score_maps(
    maps: np.ndarray,
    masks: np.ndarray,
    rule: BinariseRule = "mask_area",
    value: float | None = None,
    tolerance: int = 0,
) -> dict[str, np.ndarray]:
    """:func:`localisation_scores` of every map in ``maps`` (B, H, W) with ``masks`` (B, H, W)."""
    maps, masks = np.asarray(maps), np.asarray(masks)
    if maps.shape != masks.shape or maps.ndim != 3:
        raise ValueError(
            f"need maps and masks of one (B, H, W) shape, got {maps.shape}, {masks.shape}"
        )
    rows = [
        localisation_scores(s, m, rule, value, tolerance) for s, m in zip(maps, masks, strict=True)
    ]
    return {
        key: np.array([r[key] for r in rows]) for key in ("pointing_game", "iou", "positive_share")
    }


def region_coverage(
    saliency: np.ndarray,
    mask: np.ndarray,
    rule: BinariseRule = "mask_area",
    value: float | None = None,
    min_area: float = 0.01,
) -> np.ndarray:
    """Per separate region of ``mask`` (8-connected components covering at least ``min_area``
    of the tile, largest first): the share of its pixels among the map's salient pixels
    (:func:`binarise` with ``rule``), i.e. how much of each object the map covers."""
    saliency = _check_pair(saliency, mask)
    if not 0 <= min_area < 1:
        raise ValueError(f"min_area must be a share of the tile in [0, 1), got {min_area}")
    mask = np.asarray(mask, dtype=bool)
    regions, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    areas = np.bincount(regions.ravel(), minlength=n + 1)[1:]
    keep = [k + 1 for k in np.argsort(-areas, kind="stable") if areas[k] >= min_area * mask.size]
    salient = binarise(saliency, rule, value, mask=mask)
    return np.array([salient[regions == k].mean() for k in keep], dtype=np.float64)

