"""Metrics of segmentation explanations (Hasany et al., Fig. 4) and the Table 1 benchmark.

The procedure: binarise the saliency with a threshold, mask the image with it (pixels outside
the binary saliency set to ``fill``), segment the masked image again. Then

* **Dice Explained** = Dice between the prediction on the masked image and on the original,
* **Saliency Ratio** = non-zero pixels of the binary saliency / non-zero pixels of the
  original prediction,

and the **time** an explanation takes per image. An **empty** saliency map (all zero, so its
binary map selects nothing) must not win a metric: :func:`metric_steps` scores it with the
worst Saliency Ratio, that of a map selecting every pixel (H·W / predicted pixels), and its
Dice Explained is that of the fully masked image. :func:`benchmark` runs every method over a
set of images (explanations cached per image) and :func:`summarise` gives Table 1 with means
and 95 % t-intervals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from xaistudy.core.store import Store
from xaistudy.explain.segmentation import SEG_METHODS, explain_segmentation
from xaistudy.models.segmenters import Segmenter
from xaistudy.stats.intervals import mean_ci

log = logging.getLogger(__name__)


def binarise(saliency: np.ndarray, threshold: float) -> np.ndarray:
    """Binary saliency: pixels strictly above ``threshold`` (maps are in [0, 1])."""
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    return np.asarray(saliency) > threshold


def mask_image(images: torch.Tensor, keep: np.ndarray, fill: float = 0.0) -> torch.Tensor:
    """``images`` (B, C, H, W) with pixels where ``keep`` (B, H, W) is False set to ``fill``."""
    keep_t = torch.as_tensor(np.asarray(keep, bool), device=images.device)
    if keep_t.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(
            f"keep must be (B, H, W) = {(images.shape[0], *images.shape[-2:])}, "
            f"got {tuple(keep_t.shape)}"
        )
    return torch.where(keep_t[:, None], images, torch.full_like(images, fill))


def dice(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dice of binary maps per image (B, H, W) -> (B,); two empty maps agree fully (1)."""
    a = np.asarray(a, bool).reshape(len(a), -1)
    b = np.asarray(b, bool).reshape(len(b), -1)
    inter = (a & b).sum(1)
    total = a.sum(1) + b.sum(1)
    return np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)


def saliency_ratio(binary: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Non-zero pixels of the binary saliency / of the prediction, per image (NaN if empty)."""
    binary = np.asarray(binary, bool).reshape(len(binary), -1).sum(1).astype(float)
    pred = np.asarray(prediction, bool).reshape(len(prediction), -1).sum(1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pred > 0, binary / np.maximum(pred, 1), np.nan)


def share_inside(saliency: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Share of the total saliency that lies inside ``region`` M, per image (NaN if all 0)."""
    sal = np.asarray(saliency, float).reshape(len(saliency), -1)
    m = np.asarray(region, bool).reshape(len(region), -1)
    total = sal.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (sal * m).sum(1) / np.where(total > 0, total, 1), np.nan)


def metric_steps(
    model: Segmenter,
    images: torch.Tensor,
    target: int | str,
    saliency: np.ndarray,
    threshold: float,
    fill: float = 0.0,
) -> dict[str, np.ndarray]:
    """Every step of Fig. 4 for a batch: prediction, binary saliency, masked image and its
    prediction, Dice Explained and Saliency Ratio (all numpy, per image), and ``empty``: the
    binary map selects nothing (its Saliency Ratio is then that of the whole image)."""
    prediction = model.predict(images, target).cpu().numpy()
    binary = binarise(saliency, threshold)
    masked = mask_image(images, binary, fill)
    masked_prediction = model.predict(masked, target).cpu().numpy()
    ratio = saliency_ratio(binary, prediction)
    empty = ~binary.reshape(len(binary), -1).any(1)
    whole = saliency_ratio(np.ones_like(binary), prediction)
    return {
        "prediction": prediction,
        "binary": binary,
        "masked": masked.cpu().numpy(),
        "masked_prediction": masked_prediction,
        "dice_explained": dice(masked_prediction, prediction),
        "saliency_ratio": np.where(empty, whole, ratio),
        "empty": empty,
    }


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), seconds)`` measured with :func:`time.perf_counter`."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


# -- the Table 1 benchmark ----------------------------------------------------------------------
def method_configs(
    cam_thresholds: Sequence[float], rise_thresholds: Sequence[float], rise_masks: Sequence[int]
) -> list[dict[str, Any]]:
    """Rows of Table 1 before thresholds: one per CAM, one per RISE mask count."""
    rows = [{"method": m, "n_masks": None, "thresholds": list(cam_thresholds)} for m in SEG_METHODS]
    rows = [r for r in rows if r["method"] != "rise"]
    rows += [
        {"method": "rise", "n_masks": int(n), "thresholds": list(rise_thresholds)}
        for n in rise_masks
    ]
    return rows


def benchmark(
    model: Segmenter,
    images: torch.Tensor,
    target: int | str,
    configs: Sequence[Mapping[str, Any]],
    options: Mapping[str, Any],
    store: Store | None = None,
    cache_params: Mapping[str, Any] | None = None,
    fill: float = 0.0,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Explain every image with every config and score it; one row per (config, threshold, image).

    ``options`` are passed to :func:`explain_segmentation` (``layer``, ``pool``, ...; RISE's
    ``n_masks`` comes from the config). With ``store`` and ``cache_params`` (what identifies
    the model and images) each image's map and time are cached. Returns the rows and the
    saliency maps per config name (``method`` or ``rise-<n>``).
    """
    cam_opts = {
        k: v
        for k, v in options.items()
        if k in ("layer", "pool", "pool_mode", "ablation_batch", "ablation_ratio")
    }
    rise_opts = {
        k: v for k, v in options.items() if k in ("batch_size", "seed", "cells", "p", "baseline")
    }
    rows, maps = [], {}
    with torch.no_grad():
        model(images[:1])  # warm-up, so that the first timed method pays no start-up cost
    for cfg in configs:
        method, n_masks = cfg["method"], cfg.get("n_masks")
        opts = dict(cam_opts) if method != "rise" else {**rise_opts, "n_masks": n_masks}
        name = method if method != "rise" else f"rise-{n_masks}"

        def one(i: int, method=method, opts=opts) -> dict[str, np.ndarray]:
            sal, seconds = timed(
                explain_segmentation, method, model, images[i : i + 1], target, **opts
            )
            return {"saliency": sal[0], "seconds": np.float64(seconds)}

        items = range(len(images))
        if store is not None and cache_params is not None:
            params = {**cache_params, "method": method, "options": opts, "target": str(target)}
            results = store.cached_items("seg-saliency", params, items, one, desc=name)
        else:
            results = [one(i) for i in items]
        sal = np.stack([r["saliency"] for r in results])
        seconds = np.array([float(r["seconds"]) for r in results])
        maps[name] = sal
        for thr in cfg["thresholds"]:
            steps = metric_steps(model, images, target, sal, thr, fill)
            for i in range(len(images)):
                rows.append(
                    {
                        "method": SEG_METHODS[method].label,
                        "threshold": thr,
                        "n_masks": n_masks,
                        "gradient_based": SEG_METHODS[method].gradient_based,
                        "image": i,
                        "dice_explained": float(steps["dice_explained"][i]),
                        "saliency_ratio": float(steps["saliency_ratio"][i]),
                        "seconds": float(seconds[i]),
                    }
                )
    return pd.DataFrame(rows), maps


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 1: per (method, threshold, n_masks) the mean and 95 % CI of each metric."""
    out = []
    keys = ["method", "threshold", "n_masks", "gradient_based"]
    for (method, thr, n), group in rows.fillna({"n_masks": -1}).groupby(keys[:3], sort=False):
        row = {
            "method": method,
            "threshold": thr,
            "n_masks": None if n == -1 else int(n),
            "gradient_based": bool(group["gradient_based"].iloc[0]),
            "n_images": len(group),
        }
        for col in ("dice_explained", "saliency_ratio", "seconds"):
            mean, low, high = mean_ci(group[col])
            row[col], row[f"{col}_low"], row[f"{col}_high"] = mean, low, high
        out.append(row)
    table = pd.DataFrame(out)  # groupby(sort=False) keeps the order of the rows
    table["n_masks"] = table["n_masks"].astype("Int64")
    return table
