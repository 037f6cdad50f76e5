"""Metrics of segmentation explanations (Hasany et al., Fig. 4).

The procedure: binarise the saliency with a threshold, mask the image with it (pixels outside
the binary saliency set to ``fill``), segment the masked image again. Then

* **Dice Explained** = Dice between the prediction on the masked image and on the original,
* **Saliency Ratio** = non-zero pixels of the binary saliency / non-zero pixels of the
  original prediction,

and the **time** an explanation takes per image. An **empty** saliency map (all zero, so its
binary map selects nothing) must not win a metric: :func:`metric_steps` scores it with the
worst Saliency Ratio, that of a map selecting every pixel (H·W / predicted pixels), and its
Dice Explained is that of the fully masked image. The Table 1 pipeline (every method over the
tiles, timed, cached) is the study's, :mod:`xaistudy.studies.segmentation_xai`.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from xaistudy.models.segmenters import Segmenter

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
