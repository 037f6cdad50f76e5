"""Explaining segmentation: a target class over the whole map or over a region of interest M.

The survey of Hasany et al. compares five methods, all here behind :func:`explain_segmentation`:

``seg-grad-cam``      Grad-CAM with the score ``sum_{(i,j) in M} y_ij^c`` (Vinogradova et al.),
                      pytorch-grad-cam ``GradCAM`` + ``SemanticSegmentationTarget``; the channel
                      weights are the globally average-pooled (GAP) gradients.
``seg-xres-cam``      the same score, but no GAP: the gradient map is pooled with a small window
                      (max or average), upsampled back and multiplied element-wise with the
                      activations (:class:`SegXResCAM`, ours), so saliency stays near M.
``seg-eigen-cam``     Eigen-CAM, gradient-free: the first principal component of the
                      activations (pytorch-grad-cam ``EigenCAM``; independent of M and c).
``seg-ablation-cam``  Ablation-CAM with the M score: a channel's weight is the relative drop
                      of the score when that channel is zeroed (pytorch-grad-cam ``AblationCAM``
                      with :class:`ZeroAblationLayer`: its default layer writes ``min - 1e7``
                      instead of zero wherever a layer's output has a non-zero minimum).
``rise``              RISE (Petsiuk et al.) with score = the summed probability of class c over
                      M on the masked image, via :func:`xaistudy.explain.rise.rise`.

Scores of the CAMs are the class logits (the ``y^c`` of the survey's Eq. 4); RISE uses
probabilities so that its weights are bounded. Every map is (B, H, W) float32 in [0, 1].
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import AblationCAM, EigenCAM, GradCAM
from pytorch_grad_cam.ablation_layer import AblationLayer
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget
from torch import nn

from xaistudy.models.segmenters import Segmenter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegMethod:
    """A segmentation explanation method, for tables."""

    name: str
    label: str
    gradient_based: bool
    family: str  # "feature space" (CAM on a layer) or "perturbation"


SEG_METHODS: dict[str, SegMethod] = {
    m.name: m
    for m in [
        SegMethod("seg-grad-cam", "Seg-Grad-CAM", True, "feature space"),
        SegMethod("seg-xres-cam", "Seg-XRes-CAM", True, "feature space"),
        SegMethod("seg-eigen-cam", "Seg-Eigen-CAM", False, "feature space"),
        SegMethod("seg-ablation-cam", "Seg-Ablation-CAM", False, "feature space"),
        SegMethod("rise", "RISE", False, "perturbation"),
    ]
}
POOL_MODES: tuple[str, ...] = ("max", "avg")


class SegXResCAM(BaseCAM):
    """Seg-XRes-CAM (Hasany et al. 2023): ``ReLU(sum_k up(pool(dS/dA^k)) * A^k)``.

    ``pool`` is the window of the gradient pooling (1: no pooling, i.e. HiResCAM; a window as
    large as the map approaches Seg-Grad-CAM with max/avg pooling), ``pool_mode`` max or avg.
    """

    def __init__(
        self,
        model: nn.Module,
        target_layers: list[nn.Module],
        pool: int = 2,
        pool_mode: str = "max",
    ):
        super().__init__(model, target_layers, uses_gradients=True)
        problem = ""
        if pool < 1:
            problem = f"pool must be >= 1, got {pool}"
        elif pool_mode not in POOL_MODES:
            problem = f"pool_mode must be one of {', '.join(POOL_MODES)}, got {pool_mode!r}"
        if problem:
            self.activations_and_grads.release()
            raise ValueError(problem)
        self.pool, self.pool_mode = pool, pool_mode

    def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, eigen_smooth):
        grads = torch.from_numpy(np.asarray(grads, dtype=np.float32))
        pooled = pool_gradients(grads, self.pool, self.pool_mode)
        return (pooled.numpy() * activations).sum(axis=1)


class ZeroAblationLayer(AblationLayer):
    """Ablation as Desai & Ramaswamy define it: the ablated channel is set to zero."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        output = self.activations
        for i in range(output.size(0)):
            output[i, self.indices[i], :] = 0
        return output


def check_ablation_ratio(ratio: float) -> float:
    """``ratio`` when it is 1 or in (0, 0.5]; else a one-line ValueError.

    pytorch-grad-cam ablates the floor(r K) channels most inside its SVD objectness mask and as
    many least inside it, so a ratio above 0.5 would list channels twice.
    """
    if not (ratio == 1.0 or 0.0 < ratio <= 0.5):
        raise ValueError(f"ablation ratio must be 1 (every channel) or in (0, 0.5], got {ratio}")
    return float(ratio)


def ablated_channels(channels: int, ratio: float = 1.0) -> int:
    """Channels Seg-Ablation-CAM ablates in a layer of ``channels`` at ``ratio``."""
    return channels if check_ablation_ratio(ratio) == 1.0 else 2 * int(channels * ratio)


def pool_gradients(grads: torch.Tensor, pool: int, mode: str = "max") -> torch.Tensor:
    """Pool (B, K, h, w) gradients with a ``pool`` window (stride = window), upsample back."""
    if pool == 1:
        return grads
    op = F.max_pool2d if mode == "max" else F.avg_pool2d
    small = op(grads, pool, stride=pool, ceil_mode=True)
    return F.interpolate(small, size=grads.shape[-2:], mode="nearest")


def _regions(model: Segmenter, inputs: torch.Tensor, c: int, regions) -> np.ndarray:
    """M per image as a float32 (B, H, W) array; None = the predicted map of class c."""
    if regions is None:
        return model.predict(inputs, c).cpu().numpy().astype(np.float32)
    m = np.asarray(regions.cpu() if isinstance(regions, torch.Tensor) else regions, np.float32)
    if m.ndim == 2:
        m = np.broadcast_to(m, (len(inputs), *m.shape))
    if m.shape != (len(inputs), *inputs.shape[-2:]):
        raise ValueError(
            f"regions must be (B, H, W) = {(len(inputs), *inputs.shape[-2:])}, got {m.shape}"
        )
    return np.ascontiguousarray(m)


def seg_cam(
    method: str,
    model: Segmenter,
    inputs: torch.Tensor,
    target: int | str,
    regions: np.ndarray | torch.Tensor | None = None,
    layer: str | None = "bottleneck",
    pool: int = 2,
    pool_mode: str = "max",
    ablation_batch: int = 32,
    ablation_ratio: float = 1.0,
) -> np.ndarray:
    """A segmentation CAM (B, H, W) in [0, 1] of class ``target`` over ``regions`` M.

    ``regions``: (B, H, W) or (H, W) binary; None explains the whole predicted map of the
    class. ``layer``: a module name of ``model.net`` ("bottleneck" = the model's bottleneck).
    ``ablation_ratio`` (Seg-Ablation-CAM): 1 ablates every channel; r <= 0.5 the 2 floor(r K)
    channels pytorch-grad-cam picks (``ratio_channels_to_ablate``, see
    :func:`ablated_channels`); the others get weight 0.
    """
    if method not in SEG_METHODS or method == "rise":
        cams = ", ".join(m for m in SEG_METHODS if m != "rise")
        raise ValueError(f"unknown segmentation CAM '{method}'; allowed: {cams}")
    c = model.class_index(target)
    model.eval()
    masks = _regions(model, inputs, c, regions)
    targets = [SemanticSegmentationTarget(c, m) for m in masks]
    layers = [model.layer(layer)]
    if method == "seg-grad-cam":
        cam = GradCAM(model, layers)
    elif method == "seg-xres-cam":
        cam = SegXResCAM(model, layers, pool=pool, pool_mode=pool_mode)
    elif method == "seg-eigen-cam":
        cam = EigenCAM(model, layers)
    else:
        cam = AblationCAM(
            model,
            layers,
            ablation_layer=ZeroAblationLayer(),
            batch_size=ablation_batch,
            ratio_channels_to_ablate=check_ablation_ratio(ablation_ratio),
        )
    # BaseCAM.__exit__ swallows IndexError; call it directly and release the hooks ourselves
    try:
        out = cam(input_tensor=inputs, targets=targets)
    finally:
        cam.activations_and_grads.release()
    return np.asarray(out, dtype=np.float32)


def region_score(
    model: Segmenter, target: int | str, region: np.ndarray | torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``score_fn(images) -> (N,)``: summed probability of ``target`` over ``region`` M."""
    c = model.class_index(target)
    m = torch.as_tensor(np.asarray(region, np.float32))

    @torch.no_grad()
    def score(images: torch.Tensor) -> torch.Tensor:
        prob = model.probabilities(images)[:, c]
        return (prob * m.to(prob.device)).flatten(1).sum(1)

    return score


def seg_rise(
    model: Segmenter,
    inputs: torch.Tensor,
    target: int | str,
    regions: np.ndarray | torch.Tensor | None = None,
    n_masks: int = 1000,
    batch_size: int = 100,
    seed: int = 0,
    cells: int = 8,
    p: float = 0.5,
    baseline: float = 0.0,
    normalise: str = "coverage",
) -> np.ndarray:
    """RISE for segmentation (B, H, W), min-max scaled to [0, 1] per image.

    Each image is explained by :func:`xaistudy.explain.rise.rise` with score = the summed
    probability of ``target`` over M (None: the predicted map of the class); masked-out
    pixels take the value ``baseline``. The random masks are drawn once for all images.
    ``normalise``: ``coverage`` (per-pixel mask coverage) or ``p`` (Petsiuk's ``N * p``).
    """
    from xaistudy.explain.rise import rise, rise_masks

    c = model.class_index(target)
    model.eval()
    masks = _regions(model, inputs, c, regions)
    shared = rise_masks(n_masks, tuple(inputs.shape[-2:]), cells, p, seed).to(inputs.device)
    maps = []
    for x, m in zip(inputs, masks, strict=True):
        sal = rise(
            region_score(model, c, m),
            x[None],
            n_masks=n_masks,
            batch_size=batch_size,
            seed=seed,
            cells=cells,
            p=p,
            baseline=baseline,
            normalise=normalise,
            masks=shared,
        )
        maps.append(np.asarray(sal, np.float32).reshape(x.shape[-2:]))
    return np.stack([minmax(s) for s in maps]).astype(np.float32)


def minmax(sal: np.ndarray) -> np.ndarray:
    """``sal`` scaled to [0, 1] (a constant map becomes zeros)."""
    sal = np.asarray(sal, np.float32)
    span = float(sal.max() - sal.min())
    return (sal - sal.min()) / span if span > 0 else np.zeros_like(sal)


def explain_segmentation(
    method: str,
    model: Segmenter,
    inputs: torch.Tensor,
    target: int | str,
    regions: np.ndarray | torch.Tensor | None = None,
    layer: str | None = "bottleneck",
    **options,
) -> np.ndarray:
    """Saliency (B, H, W) in [0, 1] of ``method`` (see :data:`SEG_METHODS`) for class ``target``.

    Options: ``pool``, ``pool_mode`` (Seg-XRes-CAM), ``ablation_batch`` and
    ``ablation_ratio`` (Seg-Ablation-CAM),
    ``n_masks``, ``batch_size``, ``seed``, ``cells``, ``p``, ``baseline`` (RISE).
    """
    if method not in SEG_METHODS:
        raise ValueError(f"unknown method '{method}'; allowed: {', '.join(SEG_METHODS)}")
    if inputs.ndim != 4:
        raise ValueError(f"inputs must be (B, C, H, W), got shape {tuple(inputs.shape)}")
    if method == "rise":
        return seg_rise(model, inputs, target, regions, **options)
    return seg_cam(method, model, inputs, target, regions, layer, **options)


def roi_window(prediction: np.ndarray, size: int) -> np.ndarray:
    """A ``size`` x ``size`` window (bool, H x W) where ``prediction`` is densest.

    The region of interest of the chapter is ``window & prediction``: one local part of the
    segmentation map. Ties go to the first position in row-major order.
    """
    pred = np.asarray(prediction, np.float64)
    h, w = pred.shape
    if not 1 <= size <= min(h, w):
        raise ValueError(f"window size must be in 1..{min(h, w)}, got {size}")
    csum = np.pad(pred.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    counts = csum[size:, size:] - csum[:-size, size:] - csum[size:, :-size] + csum[:-size, :-size]
    y, x = np.unravel_index(int(np.argmax(counts)), counts.shape)
    window = np.zeros((h, w), bool)
    window[y : y + size, x : x + size] = True
    return window


@torch.no_grad()
def rise_curve(
    model: Segmenter,
    image: torch.Tensor,
    target: int | str,
    region: np.ndarray,
    masks: torch.Tensor,
    checkpoints: Sequence[int],
    batch_size: int = 10,
    baseline: float = 0.0,
    p: float = 0.5,
) -> dict[str, np.ndarray]:
    """RISE maps of one image (3, H, W) after the first ``n`` of ``masks`` for every ``n`` in
    ``checkpoints``, in one pass over the masks.

    Returns ``coverage`` and ``p`` (n_checkpoints, H, W), min-max scaled: the score-weighted
    mask sum divided per pixel by the masks' coverage, or by Petsiuk's ``n * p``; and
    ``seconds`` (n_checkpoints,), the wall time to reach each checkpoint (what a run with ``n``
    masks costs, masks drawn beforehand).
    """
    import time

    checkpoints = sorted(int(n) for n in checkpoints)
    if not checkpoints or checkpoints[0] < 1 or checkpoints[-1] > len(masks):
        raise ValueError(f"checkpoints must be in 1..{len(masks)}, got {checkpoints}")
    score = region_score(model, target, region)
    hw = image.shape[-2:]
    total = torch.zeros(hw, device=image.device)
    coverage = torch.zeros(hw, device=image.device)
    out = {"coverage": [], "p": [], "seconds": []}
    start, done = time.perf_counter(), 0
    for n in checkpoints:
        while done < n:
            m = masks[done : min(done + batch_size, n)]
            scores = score(image[None] * m + baseline * (1 - m)).reshape(-1).to(total.dtype)
            total += (scores[:, None, None] * m[:, 0]).sum(0)
            coverage += m[:, 0].sum(0)
            done += len(m)
        if image.is_cuda:
            torch.cuda.synchronize()
        out["seconds"].append(time.perf_counter() - start)
        out["coverage"].append(minmax((total / coverage.clamp(min=1e-6)).cpu().numpy()))
        out["p"].append(minmax((total / (n * p)).cpu().numpy()))
    return {k: np.asarray(v, np.float32 if k != "seconds" else np.float64) for k, v in out.items()}


def border_band(shape: tuple[int, int], width: int) -> np.ndarray:
    """Bool (H, W): the pixels within ``width`` of the image edge."""
    h, w = shape
    if not 0 <= 2 * width < min(h, w):
        raise ValueError(f"border width must be in 0..{(min(h, w) - 1) // 2}, got {width}")
    band = np.ones((h, w), bool)
    band[width : h - width, width : w - width] = False
    return band


def map_diagnostics(
    saliency: np.ndarray, prediction: np.ndarray, border: int, border_limit: float = 0.5
) -> dict[str, np.ndarray]:
    """Per map (B,): whether it is ``empty`` (all zero), the share of its saliency mass in the
    ``border``-px band (``border_share``) and whether that share is at least ``border_limit``
    (``border_map``), the share of its mass inside the prediction (``inside_share``) beside the
    prediction's share of the image (``prediction_share``), and ``background_map``: a non-empty
    map with less mass inside the prediction than a uniform map would put there."""
    sal = np.asarray(saliency, np.float64)
    pred = np.asarray(prediction, bool)
    band = border_band(sal.shape[-2:], border)
    total = sal.sum((1, 2))
    safe = np.where(total > 0, total, 1.0)
    empty = total <= 0
    border_share = np.where(empty, np.nan, (sal * band).sum((1, 2)) / safe)
    inside = np.where(empty, np.nan, (sal * pred).sum((1, 2)) / safe)
    pred_share = pred.mean((1, 2))
    return {
        "empty": empty,
        "border_share": border_share,
        "border_map": ~empty & (np.nan_to_num(border_share) >= border_limit),
        "inside_share": inside,
        "prediction_share": pred_share,
        "background_map": ~empty & (np.nan_to_num(inside) < pred_share),
    }
