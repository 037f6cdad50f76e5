"""Heatmap importance levels and occlusion strategies behind one interface (Afshar et al.).

A heatmap's grey values are clustered by k-means (k = 5) into five importance levels; level 1
holds the pixels of the highest cluster centre. ``Mask_i`` is the union of levels 1..i (nested),
and level 5 is never occluded. Every strategy replaces the pixels of a binary mask ``M``
(1 = occlude) and leaves all other pixels bit-for-bit unchanged:

==============  ==========================================================================
blackening      ``I (1 - M)`` (Eq. 1)
mean            ``I (1 - M) + mu M``, ``mu`` the dataset's per-channel mean (Eq. 3)
histogram       occluded pixels drawn from the colours of the original image (Eq. 4)
blurring        ``I (1 - M) + (I * G) M``, ``G`` a Gaussian (Eq. 2)
nli             noisy linear imputation (ROAD, Eq. 5): pytorch-grad-cam's
                ``NoisyLinearImputer`` solves the neighbour-average system; seeded noise added
ibo             RePaint with a DDPM of normal tissue (registered in :mod:`.inpaint`)
==============  ==========================================================================

A strategy is one registered function ``fn(images, mask, *, option=...)`` with explicit keyword
options; :func:`occlude` refuses an option the strategy does not take, naming the ones it does.

Strategies are applied cumulatively, level by level: step ``k`` occludes level ``k`` of the
output of step ``k-1`` (:func:`occlude_levels`), as IBO does.
"""

from __future__ import annotations

import inspect
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from sklearn.cluster import KMeans
from torchvision.transforms.functional import gaussian_blur

log = logging.getLogger(__name__)


#: keywords :func:`occlude_levels` hands every strategy that takes them (the per-image noise
#: seeds, the unoccluded original)
CONTEXT_OPTIONS = ("seeds", "original")


@dataclass(frozen=True)
class StrategyInfo:
    """An occlusion strategy: its label, whether it draws random numbers (``seeds``), the
    function ``fn(images, mask, *, options)`` and the keyword options it takes."""

    name: str
    label: str
    stochastic: bool
    fn: Callable[..., torch.Tensor] = field(repr=False, compare=False)
    options: tuple[str, ...] = ()


#: every strategy by name, registered where it is defined (:func:`register_strategy`)
STRATEGY_INFO: dict[str, StrategyInfo] = {}
#: strategy name -> label (from :data:`STRATEGY_INFO`)
STRATEGIES: dict[str, str] = {}


def register_strategy(
    name: str, label: str, stochastic: bool = False
) -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    """Register ``fn(images, mask, **options)`` as occlusion strategy ``name``."""

    def wrap(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        params = list(inspect.signature(fn).parameters.values())[2:]  # after images, mask
        if any(p.kind is p.VAR_KEYWORD for p in params):
            raise TypeError(f"strategy '{name}': name every option (no **kwargs)")
        names = tuple(p.name for p in params)
        STRATEGY_INFO[name] = StrategyInfo(name, label, stochastic, fn, names)
        STRATEGIES[name] = label
        return fn

    return wrap


# -- importance levels ----------------------------------------------------------------------
def importance_levels(heatmap: np.ndarray, k: int = 5, seed: int = 0) -> np.ndarray:
    """k-means levels (H, W) of one heatmap's grey values: 1 = highest cluster centre ... k.

    A constant map has no important pixels: everything is level ``k`` (never occluded). With
    fewer than ``k`` distinct values, the distinct clusters take levels 1, 2, ... and the lowest
    one is level ``k``.
    """
    values = np.asarray(heatmap, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"heatmap must be (H, W), got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("heatmap contains NaN or infinite values")
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    n_distinct = len(np.unique(values))
    if n_distinct == 1:
        return np.full(values.shape, k, dtype=np.int64)
    n_clusters = min(k, n_distinct)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on few distinct values
        km = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit(values.reshape(-1, 1))
    order = np.argsort(-km.cluster_centers_.ravel())  # cluster ids, highest centre first
    rank = np.empty(n_clusters, dtype=np.int64)
    rank[order] = np.arange(1, n_clusters + 1)
    rank[order[-1]] = k  # the lowest cluster is always the never-occluded level
    return rank[km.labels_].reshape(values.shape)


def levels_batch(heatmaps: np.ndarray, k: int = 5, seed: int = 0) -> np.ndarray:
    """:func:`importance_levels` of every map in (..., H, W)."""
    heatmaps = np.asarray(heatmaps)
    flat = heatmaps.reshape(-1, *heatmaps.shape[-2:])
    out = np.stack([importance_levels(h, k, seed) for h in flat])
    return out.reshape(heatmaps.shape)


def nested_masks(levels: np.ndarray, n_masks: int = 4) -> np.ndarray:
    """Boolean ``Mask_1..Mask_n`` (..., n, H, W): ``Mask_i`` = levels 1..i (nested by design)."""
    levels = np.asarray(levels)
    return np.stack([levels <= i for i in range(1, n_masks + 1)], axis=-3)


# -- strategies -----------------------------------------------------------------------------
def check_images_and_mask(
    images: torch.Tensor, mask: torch.Tensor, name: str = "mask", meaning: str = "1 = occlude"
) -> None:
    """One-line errors unless ``images`` is (B, 3, H, W) and ``mask`` (B, 1, H, W) of its size."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W) in [0, 1], got {tuple(images.shape)}")
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != images.shape[0]:
        raise ValueError(
            f"{name} must be (B, 1, H, W) with B={images.shape[0]} ({meaning}), "
            f"got {tuple(mask.shape)}"
        )
    if mask.shape[-2:] != images.shape[-2:]:
        raise ValueError(f"mask size {tuple(mask.shape[-2:])} != image size {images.shape[-2:]}")


def _composite(images: torch.Tensor, fill: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``fill`` where ``mask``, ``images`` elsewhere (exact: no arithmetic on kept pixels)."""
    return torch.where(mask.bool().expand_as(images), fill, images)


@register_strategy("blackening", "Blackening")
def blackening(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 1: occluded pixels set to black."""
    return _composite(images, torch.zeros_like(images), mask)


@register_strategy("mean", "Mean")
def mean_fill(
    images: torch.Tensor, mask: torch.Tensor, *, dataset_mean: Sequence[float] | None = None
) -> torch.Tensor:
    """Eq. 3: occluded pixels set to the dataset's per-channel mean ``dataset_mean``."""
    if dataset_mean is None:
        raise ValueError("the mean strategy needs dataset_mean (per-channel mean of the data)")
    mu = torch.as_tensor(dataset_mean, dtype=images.dtype).view(1, 3, 1, 1).expand_as(images)
    return _composite(images, mu, mask)


@register_strategy("histogram", "Histogram", stochastic=True)
def histogram_fill(
    images: torch.Tensor,
    mask: torch.Tensor,
    *,
    seeds: Sequence[int] | None = None,
    original: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 4: each occluded pixel takes the colour of a random pixel of the original image.

    Sampling whole pixels draws from the image's joint RGB histogram.
    """
    source = images if original is None else original
    seeds = list(seeds) if seeds is not None else list(range(len(images)))
    fill = torch.empty_like(images)
    n_pix = images.shape[-1] * images.shape[-2]
    for i in range(len(images)):
        gen = torch.Generator().manual_seed(int(seeds[i]))
        pick = torch.randint(0, n_pix, (n_pix,), generator=gen)
        fill[i] = source[i].reshape(3, -1)[:, pick].reshape(images.shape[1:])
    return _composite(images, fill, mask)


@register_strategy("blurring", "Blurring")
def blurring(
    images: torch.Tensor, mask: torch.Tensor, *, blur_sigma: float = 4.0
) -> torch.Tensor:
    """Eq. 2: occluded pixels replaced by a Gaussian blur (``blur_sigma`` px) of the image."""
    if blur_sigma <= 0:
        raise ValueError(f"blur_sigma must be > 0, got {blur_sigma}")
    size = min(images.shape[-1], images.shape[-2])
    kernel = min(2 * math.ceil(3 * blur_sigma) + 1, 2 * (size // 2) - 1)
    blurred = gaussian_blur(images, kernel_size=[kernel, kernel], sigma=[blur_sigma, blur_sigma])
    return _composite(images, blurred, mask)


@register_strategy("nli", "Noisy Linear Imputation", stochastic=True)
def noisy_linear_imputation(
    images: torch.Tensor,
    mask: torch.Tensor,
    *,
    seeds: Sequence[int] | None = None,
    nli_noise: float = 0.01,
) -> torch.Tensor:
    """Eq. 5 (ROAD): each occluded pixel is the weighted mean of its 8 neighbours (a sparse
    linear system, pytorch-grad-cam's ``NoisyLinearImputer``) plus N(0, ``nli_noise``²) noise."""
    imputer = NoisyLinearImputer(noise=0.0)
    seeds = list(seeds) if seeds is not None else list(range(len(images)))
    fill = images.clone()
    for i in range(len(images)):
        occluded = mask[i, 0].bool().cpu()
        if not occluded.any():
            continue
        known = (~occluded).float()
        filled = imputer(images[i].detach().float().cpu(), known)
        gen = torch.Generator().manual_seed(int(seeds[i]))
        noise = torch.randn(filled.shape, generator=gen) * nli_noise
        fill[i] = (filled + noise).clamp(0, 1).to(images.dtype)
    return _composite(images, fill, mask)


def occlude(
    strategy: str, images: torch.Tensor, mask: torch.Tensor, **options: Any
) -> torch.Tensor:
    """Occlude ``images`` (B, 3, H, W) in [0, 1] where ``mask`` (B, 1, H, W) is 1.

    ``options``: the strategy's own keywords (``STRATEGY_INFO[strategy].options``, e.g.
    ``dataset_mean`` for mean, ``blur_sigma`` for blurring, ``nli_noise`` for nli, ``unet`` and
    RePaint's schedule for ibo) and :data:`CONTEXT_OPTIONS` (``seeds``: one per image, for the
    random strategies; ``original``: the histogram's source), which go only to a strategy that
    takes them. Any other keyword raises, naming the allowed ones.
    """
    if strategy not in STRATEGY_INFO:
        raise ValueError(
            f"unknown occlusion strategy '{strategy}'; allowed: {', '.join(STRATEGY_INFO)}"
        )
    info = STRATEGY_INFO[strategy]
    unknown = sorted(set(options) - set(info.options) - set(CONTEXT_OPTIONS))
    if unknown:
        allowed = ", ".join(o for o in info.options if o not in CONTEXT_OPTIONS) or "none"
        raise ValueError(
            f"occlusion strategy '{strategy}' takes no option {', '.join(map(repr, unknown))}; "
            f"allowed: {allowed}"
        )
    check_images_and_mask(images, mask)
    kwargs = {k: v for k, v in options.items() if k in info.options}
    return info.fn(images.float(), (mask > 0.5).float(), **kwargs)


def occlude_levels(
    strategy: str,
    images: torch.Tensor,
    levels: np.ndarray | torch.Tensor,
    seeds: Sequence[int],
    n_masks: int = 4,
    **options: Any,
) -> torch.Tensor:
    """Cumulative occlusion: step k occludes level k of step k-1's output -> (B, n_masks, 3, H, W).

    After step k exactly ``Mask_k`` (levels 1..k) differs from the input. The histogram
    strategy samples from the original image at every step (Eq. 4's ``H`` of ``I``).
    """
    levels = torch.as_tensor(np.asarray(levels))
    if levels.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(f"levels must be (B, H, W) = {(images.shape[0], *images.shape[-2:])}")
    seeds = [int(s) for s in seeds]
    if len(seeds) != len(images):
        raise ValueError(f"got {len(seeds)} seeds for {len(images)} images; give one per image")
    current = images.float()
    out = []
    for k in range(1, n_masks + 1):
        mask = (levels == k).float()[:, None]
        step_seeds = [s * 10 + k for s in seeds]
        current = occlude(strategy, current, mask, seeds=step_seeds, original=images, **options)
        out.append(current)
    return torch.stack(out, dim=1)
