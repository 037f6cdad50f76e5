"""Class activation maps through pytorch-grad-cam, one name per method.

Every CAM follows pytorch-grad-cam's base class: activations ``A`` of a target layer are
weighted per channel (the method's weight function) and summed, ``ReLU``-ed, upsampled to the
input and min-max scaled per image to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pytorch_grad_cam import (
    AblationCAM,
    EigenCAM,
    FullGrad,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from xaistudy.explain.registry import METHODS, register_cam

#: methods whose constructor or call takes a batch size for their many forward passes
_BATCHED = ("scorecam", "ablationcam")
#: the call's options every CAM takes (pytorch-grad-cam's smoothing)
_SMOOTHING = ("aug_smooth", "eigen_smooth")

for _name, _cls, _label, _passes in [
    ("gradcam", GradCAM, "Grad-CAM", "1 forward + 1 backward"),
    ("gradcam++", GradCAMPlusPlus, "Grad-CAM++", "1 forward + 1 backward"),
    ("xgradcam", XGradCAM, "XGrad-CAM", "1 forward + 1 backward"),
    ("hirescam", HiResCAM, "HiResCAM", "1 forward + 1 backward"),
    ("layercam", LayerCAM, "LayerCAM", "1 forward + 1 backward"),
    ("scorecam", ScoreCAM, "Score-CAM", "1 + number of channels forward"),
    ("ablationcam", AblationCAM, "Ablation-CAM", "1 + number of channels forward"),
    ("eigencam", EigenCAM, "Eigen-CAM", "1 forward"),
    ("fullgrad", FullGrad, "FullGrad", "1 forward + 1 backward"),
]:
    _batch = ("batch_size",) if _name in _BATCHED else ()
    register_cam(_name, _cls, label=_label, passes=_passes, options=_SMOOTHING + _batch)

#: the CAM methods' pytorch-grad-cam classes by name (from :data:`METHODS`)
CAM_METHODS: dict[str, type] = {
    name: info.implementation for name, info in METHODS.items() if info.family == "cam"
}


def as_targets(target: int | Sequence[int] | torch.Tensor, n: int) -> list[int]:
    """One integer class per image from an int, a sequence or a tensor of length ``n``."""
    if isinstance(target, torch.Tensor):
        target = target.reshape(-1).tolist()
    if isinstance(target, (int, np.integer)):
        return [int(target)] * n
    target = [int(t) for t in target]
    if len(target) != n:
        raise ValueError(f"got {len(target)} targets for {n} images; give one per image")
    return target


def compute_cam(
    method: str,
    model: nn.Module,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | Sequence[Any] | torch.Tensor,
    target_layers: nn.Module | Sequence[nn.Module],
    batch_size: int = 32,
    *,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
) -> np.ndarray:
    """``method``'s CAM of ``inputs`` (B, C, H, W) for ``targets``: float32 (B, H, W) in [0, 1].

    ``targets`` are class indices (one per image, or one for all) or pytorch-grad-cam target
    objects (e.g. ``SemanticSegmentationTarget``), one per image. ``batch_size``: images per
    forward pass of Score-CAM and Ablation-CAM; ``aug_smooth``/``eigen_smooth``: pytorch-grad-cam's
    test-time augmentation and first-principal-component smoothing. A wrong layer raises instead
    of passing silently.
    """
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method '{method}'; allowed: {', '.join(CAM_METHODS)}")
    layers = [target_layers] if isinstance(target_layers, nn.Module) else list(target_layers)
    device = next(model.parameters()).device
    inputs = inputs.to(device)
    if isinstance(targets, (int, np.integer, torch.Tensor)) or (
        len(targets) and isinstance(next(iter(targets)), (int, np.integer))
    ):
        targets = [ClassifierOutputTarget(t) for t in as_targets(targets, len(inputs))]
    elif len(targets) != len(inputs):
        raise ValueError(f"got {len(targets)} targets for {len(inputs)} images; give one per image")
    kwargs = {"batch_size": batch_size} if method == "ablationcam" else {}
    model.eval()
    if method == "fullgrad":  # FullGrad hooks every bias layer itself and prints a warning
        layers = []  # when given target layers
    with CAM_METHODS[method](model=model, target_layers=layers, **kwargs) as cam:
        if method == "scorecam":
            cam.batch_size = batch_size
        try:
            maps = cam(
                input_tensor=inputs,
                targets=list(targets),
                aug_smooth=aug_smooth,
                eigen_smooth=eigen_smooth,
            )
        except IndexError as err:  # BaseCAM.__exit__ would print and swallow it
            raise ValueError(f"{method} failed on the given layer/targets: {err}") from err
    return np.nan_to_num(np.asarray(maps, dtype=np.float32))
