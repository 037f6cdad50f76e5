"""Model-parameter randomisation sanity check (Adebayo et al., 2018).

An explanation that reflects what the model learned must change when the learned weights are
replaced by random ones. :func:`randomise_top_layers` re-initialises the top ``k`` weight
layers (the ones nearest the output), :func:`cascading_randomisation` does so for k = 1, 2, ...
(from the top down), and :func:`compare_maps` measures how similar two maps remain with
Spearman's rank correlation (:func:`scipy.stats.spearmanr`) and SSIM
(:func:`skimage.metrics.structural_similarity`). A map that passes the check has a *low*
similarity between the trained and the randomised model.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator

import numpy as np
import torch
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn

log = logging.getLogger(__name__)

#: Module types counted as "layers" (those holding the learned weights).
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every convolution and linear layer, input side first."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)]


def randomise_top_layers(model: nn.Module, k: int, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose top ``k`` weight layers are re-initialised (seeded).

    Each layer gets its PyTorch default initialisation (``reset_parameters``); the original
    model is left untouched. Batch-norm statistics and the layers below are kept.
    """
    layers = weight_layers(model)
    if not 1 <= k <= len(layers):
        raise ValueError(f"k must be from 1 to {len(layers)} (the model's weight layers), got {k}")
    clone = copy.deepcopy(model)
    modules = dict(clone.named_modules())
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        for name, _ in layers[-k:]:
            modules[name].reset_parameters()
    finally:
        torch.random.set_rng_state(gen_state)
    log.debug("re-initialised %s", ", ".join(n for n, _ in layers[-k:]))
    return clone.eval()


def cascading_randomisation(
    model: nn.Module, seed: int = 0, max_layers: int | None = None
) -> Iterator[tuple[int, str, nn.Module]]:
    """Yield ``(k, name of the k-th layer from the top, model with the top k re-initialised)``."""
    n = len(weight_layers(model))
    names = [name for name, _ in weight_layers(model)][::-1]
    for k in range(1, min(n, max_layers or n) + 1):
        yield k, names[k - 1], randomise_top_layers(model, k, seed)


def _check_maps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two 2-D maps of the same shape, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("maps contain NaN or infinite values")
    return a, b


def rank_correlation(a: np.ndarray, b: np.ndarray, absolute: bool = False) -> float:
    """Spearman's rank correlation of two maps' pixels.

    A constant map (e.g. a CAM that is zero everywhere after re-initialisation) orders no
    pixel, so it shares no ranking with a non-constant map: 0. Two constant maps: NaN.
    ``absolute`` compares magnitudes only, as Adebayo et al. do for signed maps.
    """
    a, b = _check_maps(a, b)
    if absolute:
        a, b = np.abs(a), np.abs(b)
    flat_a, flat_b = np.ptp(a) == 0, np.ptp(b) == 0
    if flat_a and flat_b:
        return float("nan")
    if flat_a or flat_b:
        return 0.0
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def _unit_range(x: np.ndarray) -> np.ndarray:
    span = np.ptp(x)
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def ssim(a: np.ndarray, b: np.ndarray, absolute: bool = False) -> float:
    """SSIM of two maps, each min-max scaled to [0, 1] first (data range 1)."""
    a, b = _check_maps(a, b)
    if absolute:
        a, b = np.abs(a), np.abs(b)
    win = min(7, *a.shape)
    win -= 1 - win % 2  # odd window no larger than the map
    return float(
        structural_similarity(_unit_range(a), _unit_range(b), data_range=1.0, win_size=win)
    )


def compare_maps(a: np.ndarray, b: np.ndarray, absolute: bool = False) -> dict[str, float]:
    """``{"spearman": ..., "ssim": ...}`` of two maps."""
    return {"spearman": rank_correlation(a, b, absolute), "ssim": ssim(a, b, absolute)}


def compare_batches(
    maps: np.ndarray, other: np.ndarray, absolute: bool = False
) -> dict[str, np.ndarray]:
    """Per-image :func:`compare_maps` of two ``(B, H, W)`` stacks."""
    maps, other = np.asarray(maps), np.asarray(other)
    if maps.shape != other.shape or maps.ndim != 3:
        raise ValueError(f"need two (B, H, W) stacks of one shape, got {maps.shape}, {other.shape}")
    rows = [compare_maps(a, b, absolute) for a, b in zip(maps, other, strict=True)]
    return {key: np.array([r[key] for r in rows]) for key in ("spearman", "ssim")}
