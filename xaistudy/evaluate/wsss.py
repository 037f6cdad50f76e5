"""Weakly supervised segmentation from CAMs: binarise, IoU, layer aggregation, mIoU tables.

A CAM (already upsampled and min-max scaled) becomes a mask by a threshold rule
(:data:`BINARISE_RULES`); its IoU with the annotation is averaged over images (mIoU).
Layer aggregation (You et al., 2024) averages the maps of several layers and min-max scales
the mean again (:data:`AGGREGATIONS`: 4, 4+3, 4+3+2, 4+3+2+1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from skimage.filters import threshold_otsu

from xaistudy.evaluate.localisation import iou
from xaistudy.explain.relevance import minmax

BINARISE_RULES: dict[str, str] = {
    "mean_std": "pixels above the map's mean + one standard deviation (default)",
    "mean": "pixels above the map's mean",
    "otsu": "pixels above Otsu's threshold of the map",
    "fixed": "pixels above a fixed threshold in [0, 1]",
}
AGGREGATIONS: dict[str, tuple[str, ...]] = {
    "4": ("layer4",),
    "4+3": ("layer4", "layer3"),
    "4+3+2": ("layer4", "layer3", "layer2"),
    "4+3+2+1": ("layer4", "layer3", "layer2", "layer1"),
}


def _as_stack(maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"maps must be (B, H, W) or (H, W), got shape {maps.shape}")
    return maps


def binarise(maps: np.ndarray, rule: str = "mean_std", threshold: float = 0.5) -> np.ndarray:
    """Boolean masks ``(B, H, W)`` from maps by ``rule`` (one threshold per map)."""
    if rule not in BINARISE_RULES:
        raise ValueError(f"unknown binarise rule '{rule}'; allowed: {', '.join(BINARISE_RULES)}")
    maps = _as_stack(maps)
    if rule == "fixed":
        if not 0 <= threshold <= 1:
            raise ValueError(f"fixed threshold must be in [0, 1], got {threshold}")
        return maps > threshold
    if rule == "otsu":
        cut = [threshold_otsu(m) if np.ptp(m) > 0 else np.inf for m in maps]
        return maps > np.array(cut)[:, None, None]
    mean = maps.mean(axis=(1, 2), keepdims=True)
    std = maps.std(axis=(1, 2), keepdims=True) if rule == "mean_std" else 0.0
    return maps > mean + std


def aggregate(maps_by_layer: Mapping[str, np.ndarray], layers: Sequence[str]) -> np.ndarray:
    """Mean of the maps of ``layers``, min-max scaled per image."""
    missing = [n for n in layers if n not in maps_by_layer]
    if missing:
        raise ValueError(f"no maps for layer '{missing[0]}'; have {', '.join(maps_by_layer)}")
    return minmax(np.mean([np.asarray(maps_by_layer[n]) for n in layers], axis=0))


def miou(maps: np.ndarray, masks: np.ndarray, rule: str = "mean_std", threshold: float = 0.5):
    """Mean IoU (in %) of the binarised ``maps`` against ``masks``."""
    values = iou(binarise(maps, rule, threshold), np.asarray(masks, bool).reshape(np.shape(maps)))
    values = np.atleast_1d(values)
    return float(np.nanmean(values) * 100) if np.isfinite(values).any() else float("nan")


def miou_per_layer(
    maps: Mapping[str, Mapping[str, np.ndarray]],
    masks: np.ndarray,
    rule: str = "mean_std",
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Table 1: one row per method, one column per layer plus ``average`` (mIoU %)."""
    rows = []
    for method, by_layer in maps.items():
        row = {"method": method}
        for layer, m in by_layer.items():
            row[layer] = miou(m, masks, rule, threshold)
        row["average"] = float(np.mean([row[layer] for layer in by_layer]))
        rows.append(row)
    return pd.DataFrame(rows)


def miou_aggregation(
    maps: Mapping[str, Mapping[str, np.ndarray]],
    masks: np.ndarray,
    rule: str = "mean_std",
    threshold: float = 0.5,
    aggregations: Mapping[str, Sequence[str]] = AGGREGATIONS,
) -> pd.DataFrame:
    """Table 2: one row per method, one column per layer aggregation (mIoU %)."""
    rows = []
    for method, by_layer in maps.items():
        row = {"method": method}
        for label, layers in aggregations.items():
            row[label] = miou(aggregate(by_layer, layers), masks, rule, threshold)
        rows.append(row)
    return pd.DataFrame(rows)
