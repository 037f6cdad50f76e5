"""RelevanceCAM and XRelevanceCAM, and every CAM method at every stage of a ResNet.

RelevanceCAM (Lee et al., 2021) weights channel ``k`` by the mean CLRP relevance of its map
(:mod:`xaistudy.explain.clrp`); XRelevanceCAM (You et al., 2024, Eq. 1) by
``sum_ij R_ij^k / sum_ij A_ij^k``. Both maps are ``sum_k w_k A^k``, upsampled to the input and
min-max scaled per image, with no ReLU before the scaling: the Relevance-CAM and XRelevanceCAM
reference codes apply none (the gradient CAMs keep pytorch-grad-cam's ReLU).

:func:`layer_cams` gives the maps of the gradient CAMs (pytorch-grad-cam's weights, one
backward for all layers) and of the two relevance CAMs (one CLRP pass) at each layer;
:data:`LABELS` names the methods for tables and figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from types import SimpleNamespace

import numpy as np
import torch
from pytorch_grad_cam.utils.image import scale_cam_image
from torch import nn

from xaistudy.explain.cams import as_targets
from xaistudy.explain.clrp import DEFAULT_RULE, clrp_relevance, resolve_layers
from xaistudy.explain.registry import METHODS
from xaistudy.models.stages import STAGES

RELEVANCE_METHODS: tuple[str, ...] = ("relevancecam", "xrelevancecam")


# -- CAM weights and maps -------------------------------------------------------------------
def relevancecam_weights(relevance: torch.Tensor) -> torch.Tensor:
    """RelevanceCAM: the mean relevance of each channel's map, ``(B, K)``."""
    return relevance.mean(dim=(2, 3))


def xrelevancecam_weights(
    relevance: torch.Tensor, activations: torch.Tensor, eps: float = 1e-12
) -> torch.Tensor:
    """XRelevanceCAM (Eq. 1): ``sum_ij R / sum_ij A`` per channel, 0 for all-zero channels."""
    num = relevance.sum(dim=(2, 3))
    den = activations.sum(dim=(2, 3))
    safe = torch.where(den.abs() > eps, den, torch.ones_like(den))
    return torch.where(den.abs() > eps, num / safe, torch.zeros_like(num))


def relevance_weights(method: str, relevance: torch.Tensor, activations: torch.Tensor):
    """Channel weights ``(B, K)`` of ``relevancecam`` or ``xrelevancecam``."""
    if method == "relevancecam":
        return relevancecam_weights(relevance)
    if method == "xrelevancecam":
        return xrelevancecam_weights(relevance, activations)
    raise ValueError(
        f"unknown relevance method '{method}'; allowed: {', '.join(RELEVANCE_METHODS)}"
    )


def minmax(maps: np.ndarray) -> np.ndarray:
    """Per-image min-max scaling of ``(B, H, W)`` to [0, 1] (constant maps become 0)."""
    maps = np.asarray(maps, dtype=np.float32)
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def finish_cam(cam: np.ndarray, size: tuple[int, int], relu: bool = True) -> np.ndarray:
    """pytorch-grad-cam's post-processing: ReLU (when ``relu``), min-max, resize to ``size``
    (H, W), min-max."""
    cam = np.asarray(cam, dtype=np.float32)
    if relu:
        cam = np.maximum(cam, 0)
    return minmax(scale_cam_image(cam, (size[1], size[0])))


def weighted_cam(
    weights: torch.Tensor, activations: torch.Tensor, size: tuple[int, int]
) -> np.ndarray:
    """``sum_k w_k A^k`` upsampled to ``size``, min-max scaled, no ReLU (as the relevance
    CAMs' reference codes): (B, H, W)."""
    cam = (weights[:, :, None, None] * activations).sum(1)
    return finish_cam(cam.float().numpy(), size, relu=False)


def relevance_cams(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor,
    layers: Sequence[str] | Mapping[str, nn.Module] = STAGES,
    rule: str = DEFAULT_RULE,
    methods: Sequence[str] = RELEVANCE_METHODS,
    batch_size: int = 16,
) -> dict[str, dict[str, np.ndarray]]:
    """``{method: {layer: maps (B, H, W)}}`` of RelevanceCAM / XRelevanceCAM from one CLRP pass."""
    captured, _ = clrp_relevance(model, inputs, targets, layers, rule, batch_size)
    size = tuple(inputs.shape[-2:])
    return {
        m: {n: weighted_cam(relevance_weights(m, r, a), a, size) for n, (a, r) in captured.items()}
        for m in methods
    }


#: the CAMs compared layer by layer: pytorch-grad-cam's five and the two relevance CAMs
LAYER_METHODS: tuple[str, ...] = (
    "gradcam",
    "gradcam++",
    "xgradcam",
    "hirescam",
    "layercam",
    *RELEVANCE_METHODS,
)


#: display names of :data:`LAYER_METHODS` (the gradient CAMs' from the method registry)
LABELS: dict[str, str] = {
    **{m: METHODS[m].label for m in LAYER_METHODS if m not in RELEVANCE_METHODS},
    "relevancecam": "RelevanceCAM",
    "xrelevancecam": "XRelevanceCAM",
}


def layer_activations_and_grads(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: Sequence[int],
    layers: Mapping[str, nn.Module],
    batch_size: int = 16,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Activations and target-logit gradients ``(B, K, h, w)`` at each layer, one backward."""
    device = next(model.parameters()).device
    acts: dict[str, list] = {n: [] for n in layers}
    grads: dict[str, list] = {n: [] for n in layers}
    tgt = torch.tensor(list(targets))
    model.eval()
    for start in range(0, len(inputs), batch_size):
        seen: dict[str, torch.Tensor] = {}
        got: dict[str, torch.Tensor] = {}

        def capture(name, seen=seen, got=got):
            def hook(module, args, output):
                seen[name] = output.detach().cpu()
                output.register_hook(lambda g: got.__setitem__(name, g.detach().cpu()))

            return hook

        handles = [m.register_forward_hook(capture(n)) for n, m in layers.items()]
        try:
            x = inputs[start : start + batch_size].to(device).requires_grad_(True)
            logits = model(x)
            t = tgt[start : start + batch_size].to(device)
            model.zero_grad(set_to_none=True)
            logits.gather(1, t[:, None]).sum().backward()
        finally:
            for h in handles:
                h.remove()
        for n in layers:
            acts[n].append(seen[n].numpy())
            grads[n].append(got[n].numpy())
    return {n: (np.concatenate(acts[n]), np.concatenate(grads[n])) for n in layers}


def gradient_cams(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor,
    layers: Sequence[str] | Mapping[str, nn.Module] = STAGES,
    methods: Sequence[str] = LAYER_METHODS[:5],
    batch_size: int = 16,
) -> dict[str, dict[str, np.ndarray]]:
    """Gradient CAMs of every layer from one forward/backward, with pytorch-grad-cam's code.

    Each method's own ``get_cam_image`` (its weights) and post-processing are applied to the
    activations and gradients of each layer, so the maps equal
    :func:`~xaistudy.explain.cams.compute_cam` with that single layer, at a quarter of the
    passes for four layers.
    """
    from xaistudy.explain.cams import CAM_METHODS

    modules = resolve_layers(model, layers)
    tgt = as_targets(targets, len(inputs))
    captured = layer_activations_and_grads(model, inputs, tgt, modules, batch_size)
    size = tuple(inputs.shape[-2:])
    out: dict[str, dict[str, np.ndarray]] = {}
    for method in methods:
        if method not in CAM_METHODS:
            raise ValueError(f"unknown CAM method '{method}'; allowed: {', '.join(CAM_METHODS)}")
        cls = CAM_METHODS[method]
        # the class's own weight and image functions, without its hooks (they use no state)
        shim = SimpleNamespace(get_cam_weights=partial(cls.get_cam_weights, None))
        out[method] = {
            n: finish_cam(cls.get_cam_image(shim, None, None, None, a, g, False), size)
            for n, (a, g) in captured.items()
        }
    return out


def layer_cams(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor,
    methods: Sequence[str] = LAYER_METHODS,
    layers: Sequence[str] = STAGES,
    rule: str = DEFAULT_RULE,
    batch_size: int = 16,
    n_passes: int = 1,
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """``{method: {layer: maps (B, H, W)}}`` for every method at every layer.

    Gradient CAMs come from :func:`gradient_cams` (pytorch-grad-cam's weights, one backward
    for all layers); the relevance CAMs from one CLRP pass per batch. With ``n_passes > 1``
    (a model whose dropout stays on) the maps of ``n_passes`` seeded passes are averaged, as
    in the paper's dropout experiment.
    """
    from xaistudy.explain.cams import CAM_METHODS

    unknown = [m for m in methods if m not in CAM_METHODS and m not in RELEVANCE_METHODS]
    if unknown:
        raise ValueError(f"unknown CAM method '{unknown[0]}'; allowed: {', '.join(LAYER_METHODS)}")
    if n_passes < 1:
        raise ValueError(f"n_passes must be >= 1, got {n_passes}")
    modules = resolve_layers(model, layers)
    tgt = as_targets(targets, len(inputs))
    total: dict[str, dict[str, np.ndarray]] = {m: {} for m in methods}
    state = torch.random.get_rng_state()
    try:
        for p in range(n_passes):
            out: dict[str, dict[str, np.ndarray]] = {m: {} for m in methods}
            grad_methods = [m for m in methods if m not in RELEVANCE_METHODS]
            if grad_methods:
                torch.manual_seed(seed * 1000 + p)
                out.update(gradient_cams(model, inputs, tgt, modules, grad_methods, batch_size))
            relevant = [m for m in methods if m in RELEVANCE_METHODS]
            if relevant:
                torch.manual_seed(seed * 1000 + p)
                out.update(relevance_cams(model, inputs, tgt, modules, rule, relevant, batch_size))
            for method in methods:
                for name in modules:
                    prev = total[method].get(name, 0.0)
                    total[method][name] = prev + out[method][name] / n_passes
    finally:
        torch.random.set_rng_state(state)
    return {m: {n: v.astype(np.float32) for n, v in d.items()} for m, d in total.items()}
