"""The IBO study's explanations and occlusions: CAM heatmaps of tumour tiles, every occlusion
strategy over the nested masks with common random numbers, and what is measured after each
mask (P(tumour), distances to the original, out-of-distribution score)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from xaistudy.evaluate import controls, occlusion, perceptual
from xaistudy.evaluate.inpaint import count_unet_calls
from xaistudy.explain import METHODS, explain
from xaistudy.models.classifiers import resolve_device, target_layer
from xaistudy.models.classify import predict_proba

#: the paper's seven CAMs, in its order
CAMS = ("gradcam", "gradcam++", "xgradcam", "ablationcam", "eigencam", "scorecam", "fullgrad")
#: the paper's six strategies, in its order
STRATEGY_ORDER = ("blackening", "histogram", "mean", "nli", "blurring", "ibo")
#: the strategies that draw random numbers (replicated over the noise)
STOCHASTIC = frozenset(n for n, s in occlusion.STRATEGY_INFO.items() if s.stochastic)
#: the distances measured after each mask, in the order of Table 1's rows
METRICS = ("lpips_alex", "ssim", "feature_lpips", "mahalanobis")
#: samples occluded and measured together: bounds the memory of a strategy's evaluation
#: (at 512 px, 8 samples x 7 methods x 4 masks are 0.7 GB of float32 images) whatever n_samples
SAMPLE_CHUNK = 8


def method_label(name: str) -> str:
    """The explanation method's label (its registry entry's), or ``name`` itself."""
    return METHODS[name].label if name in METHODS else name


def heatmaps(
    model: nn.Module, images: torch.Tensor, methods: Sequence[str], batch_size: int = 32
) -> np.ndarray:
    """CAM maps (S, M, H, W) in [0, 1] for the tumour class, one per image and method."""
    layer = target_layer(model)
    out = []
    for method in tqdm(methods, desc="heatmaps", leave=False):
        maps = [
            explain(method, model, images[i : i + batch_size], 1, layer=layer)
            for i in range(0, len(images), batch_size)
        ]
        out.append(np.concatenate(maps))
    return np.stack(out, axis=1).astype(np.float32)


def noise_seeds(
    seed: int, sample_ids: Sequence[int], n_methods: int, replicate: int = 0
) -> np.ndarray:
    """Common random numbers: one noise seed per (sample, replicate), the same for every
    method of the sample (S, M). Two methods with the same heatmap get the same occlusion;
    different replicates draw independent noise."""
    base = [
        int(np.random.SeedSequence([seed, int(s), replicate, 17]).generate_state(1)[0] >> 4)
        for s in sample_ids
    ]
    return np.repeat(np.array(base, dtype=np.int64)[:, None], n_methods, axis=1)


def random_regions(regions: np.ndarray, seed: int, sample_ids: Sequence[int]) -> np.ndarray:
    """Each sample's region (S, H, W) moved to random CAM-like blobs (Gaussian-smoothed noise,
    1/16 of the side wide) of exactly its area: where no heatmap looked. Seeded per (seed,
    sample): a tile's region does not depend on the other samples."""
    side = regions.shape[-1]
    return np.stack(
        [
            controls.coverage_matched(
                r[None].astype(np.float32), (seed, int(s), 6), smooth=side / 16
            )[0]
            > 0.5
            for r, s in zip(regions, sample_ids, strict=True)
        ]
    )


def numerics_key(params: Any) -> dict[str, Any]:
    """How the UNet ran, for a sampling stage's key: nothing at the defaults (fp32, not
    compiled), so the float32 results keep their keys."""
    key: dict[str, Any] = {}
    if params.precision != "fp32":
        key["precision"] = params.precision
    if params.compile:
        key["compile"] = True
    return key


def strategy_options(
    params: Any, mean: Sequence[float], dm: Any, ddpm_key: dict
) -> dict[str, tuple[dict, dict]]:
    """Per strategy: (options that go into the cache key, options passed to the occlusion);
    ``mean`` is the training tiles' channel mean (the Mean strategy's fill); ``dm`` the DDPM
    (:class:`~xaistudy.models.ddpm.DDPMResult`; None: no IBO entry). ``params``: any object
    with the ``ibo`` parameters' fields."""
    p = params
    mean = list(mean)
    ibo_key = {
        "ddpm": ddpm_key,
        "repaint_steps": p.repaint_steps,
        "jump_length": p.jump_length,
        "resamplings": p.resamplings,
        "eta": p.eta,
        "repaint_batch": p.repaint_batch,
        "device": str(resolve_device(p.device)),
        **numerics_key(p),
    }
    ibo_run = dict(
        unet=getattr(dm, "unet", None),
        ddpm_scheduler=getattr(dm, "scheduler", None),
        scaling=getattr(dm, "scaling", None),
        num_inference_steps=p.repaint_steps,
        jump_length=p.jump_length,
        jump_n_sample=p.resamplings,
        eta=p.eta,
        batch_size=p.repaint_batch,
        device=p.device,
        precision=p.precision,
        compile=p.compile,
    )
    options = {
        "blackening": ({}, {}),
        "mean": ({"dataset_mean": mean}, {"dataset_mean": mean}),
        "histogram": ({}, {}),
        "blurring": ({"blur_sigma": p.blur_sigma}, {"blur_sigma": p.blur_sigma}),
        "nli": ({"nli_noise": p.nli_noise}, {"nli_noise": p.nli_noise}),
    }
    if dm is not None:
        options["ibo"] = (ibo_key, ibo_run)
    return options


def occlude_all(
    strategy: str,
    images: torch.Tensor,
    levels: np.ndarray,
    seeds: np.ndarray,
    n_masks: int,
    **options: Any,
) -> torch.Tensor:
    """Occluded images (S, M, n_masks, 3, H, W) of one strategy for the levels (S, M, H, W) of
    every (sample, method) and their noise ``seeds`` (S, M).

    Every distinct (sample, method) image goes through one batched call per level (RePaint
    included); identical occluded levels with the same noise are computed once.
    """
    s, m = levels.shape[:2]
    flat_levels = levels.reshape(s * m, *levels.shape[2:])
    flat_seeds = np.asarray(seeds).reshape(-1)
    first, inverse = _unique_jobs(flat_levels, flat_seeds, n_masks, m)
    picked = torch.as_tensor(first // m)
    out = occlusion.occlude_levels(
        strategy,
        images[picked],
        flat_levels[first],
        flat_seeds[first].tolist(),
        n_masks=n_masks,
        **options,
    )
    return out[torch.as_tensor(inverse)].reshape(s, m, n_masks, *images.shape[1:])


def _unique_jobs(
    levels: np.ndarray, seeds: np.ndarray, n_masks: int, n_methods: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the distinct (sample, seed, occluded levels) jobs among the flat (S * M)
    images, and for every image the job that gives its result (identical heatmaps with the
    same noise give identical occlusions, so they are computed once)."""
    seen: dict[tuple, int] = {}
    first, inverse = [], []
    for i in range(len(levels)):
        clipped = np.where(levels[i] <= n_masks, levels[i], 0).astype(np.int8)
        key = (i // n_methods, int(seeds[i]), clipped.tobytes())
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        inverse.append(seen[key])
    return np.array(first, dtype=np.int64), np.array(inverse, dtype=np.int64)


def evaluate_strategy(
    strategy: str,
    model: nn.Module,
    images: torch.Tensor,
    levels: np.ndarray,
    seeds: np.ndarray,
    n_masks: int,
    ood: perceptual.Mahalanobis,
    n_examples: int = 2,
    alexnet_weights: str = "",
    sample_chunk: int = SAMPLE_CHUNK,
    **options: Any,
) -> dict[str, np.ndarray]:
    """Occlude with ``strategy`` and measure everything the tables need, per (sample, method).

    Returns ``prob`` (S, M, n_masks + 1): P(tumour) of the original then after every mask;
    ``ssim``, ``feature_lpips``, ``mahalanobis`` and, with an AlexNet weights file
    (``alexnet_weights``, or the standard local file when empty), ``lpips_alex``
    (S, M, n_masks); ``examples`` (n_examples, M, n_masks, H, W, 3) uint8; ``seconds`` and
    ``unet_calls`` (UNet forward calls, IBO only). The samples are processed ``sample_chunk``
    at a time (each sample's occlusion depends on its own seeds only).
    """
    parts = []
    for i in tqdm(range(0, len(images), sample_chunk), desc=strategy, leave=False,
                  disable=len(images) <= sample_chunk):  # fmt: skip
        j = i + sample_chunk
        parts.append(_evaluate_samples(strategy, model, images[i:j], levels[i:j], seeds[i:j],
                                       n_masks, ood, alexnet_weights, max(n_examples - i, 0),
                                       **options))  # fmt: skip
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k not in _TOTALS}
    out.update({k: np.sum([p[k] for p in parts]) for k in _TOTALS})
    return out


_TOTALS = ("seconds", "unet_calls")


def _evaluate_samples(
    strategy: str,
    model: nn.Module,
    images: torch.Tensor,
    levels: np.ndarray,
    seeds: np.ndarray,
    n_masks: int,
    ood: perceptual.Mahalanobis,
    alexnet_weights: str,
    n_examples: int,
    **options: Any,
) -> dict[str, np.ndarray]:
    unet = options.get("unet")
    start = time.perf_counter()
    if unet is not None:
        with count_unet_calls(unet) as counter:
            occluded = occlude_all(strategy, images, levels, seeds, n_masks, **options)
        calls = counter.calls
    else:
        occluded = occlude_all(strategy, images, levels, seeds, n_masks, **options)
        calls = 0
    seconds = time.perf_counter() - start
    out = measure_occluded(model, images, occluded, ood, alexnet_weights, n_examples)
    return {**out, "seconds": np.array(seconds), "unet_calls": np.array(calls)}


def measure_occluded(
    model: nn.Module,
    images: torch.Tensor,
    occluded: torch.Tensor,
    ood: perceptual.Mahalanobis,
    alexnet_weights: str = "",
    n_examples: int = 0,
) -> dict[str, np.ndarray]:
    """What the tables read from occluded images (S, M, n_masks, 3, H, W) of ``images``
    (S, 3, H, W): ``prob`` (S, M, n_masks + 1), P(tumour) of the original then after every
    mask; ``ssim``, ``feature_lpips``, ``mahalanobis`` and, with AlexNet weights,
    ``lpips_alex`` (S, M, n_masks); ``examples``: the first ``n_examples`` samples as uint8."""
    s, m, k = occluded.shape[:3]
    flat = occluded.reshape(-1, *images.shape[1:]).float()
    x = images[:, None, None].expand(s, m, k, *images.shape[1:]).reshape(-1, *images.shape[1:])
    p0 = predict_proba(model, images, target=1)
    pk = predict_proba(model, flat, target=1).reshape(s, m, k)
    out = {
        "prob": np.concatenate([np.broadcast_to(p0[:, None, None], (s, m, 1)), pk], axis=2),
        "ssim": perceptual.ssim(x, flat).reshape(s, m, k),
        "feature_lpips": perceptual.feature_distance(model, x, flat).reshape(s, m, k),
        "mahalanobis": ood.score(perceptual.penultimate_features(model, flat)).reshape(s, m, k),
        "examples": (occluded[:n_examples].permute(0, 1, 2, 4, 5, 3).clamp(0, 1) * 255)
        .round()
        .to(torch.uint8)
        .numpy(),
    }
    if perceptual.alexnet_weights_path(alexnet_weights) is not None:
        lpips = perceptual.lpips_alex(x, flat, weights=alexnet_weights)
        out["lpips_alex"] = lpips.reshape(s, m, k)
    return out
