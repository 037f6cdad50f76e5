"""Explanations of image classifiers under one call: ``explain(method, model, inputs, target)``.

``explain`` returns one map per image (B, H, W) at input resolution: CAMs in [0, 1], pixel
attributions as the signed sum over channels (positive = evidence for the target).
:data:`METHODS` describes every method (family, library, whether it is signed, needs a layer,
is model-agnostic, and what it costs in forward/backward passes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from xaistudy.explain.attributions import ATTRIBUTIONS, attribute
from xaistudy.explain.cams import CAM_METHODS, compute_cam


@dataclass(frozen=True)
class MethodInfo:
    """What a method is, for taxonomies and tables."""

    name: str
    label: str
    family: str  # "perturbation", "backpropagation" or "cam"
    library: str
    signed: bool
    needs_layer: bool
    model_agnostic: bool
    passes: str  # forward/backward passes per image, as a formula of the method's options


def _m(name, label, family, library, signed, needs_layer, agnostic, passes) -> MethodInfo:
    return MethodInfo(name, label, family, library, signed, needs_layer, agnostic, passes)


METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in [
        _m(
            "occlusion",
            "Occlusion",
            "perturbation",
            "captum",
            True,
            False,
            True,
            "1 + number of window positions forward",
        ),
        _m("lime", "LIME", "perturbation", "lime", True, False, True, "num_samples forward"),
        _m(
            "kernel_shap",
            "KernelSHAP",
            "perturbation",
            "captum",
            True,
            False,
            True,
            "n_samples forward",
        ),
        _m("rise", "RISE", "perturbation", "xaistudy", False, False, True, "n_masks forward"),
        _m(
            "feature_ablation",
            "Feature ablation",
            "perturbation",
            "captum",
            True,
            False,
            True,
            "1 + number of superpixels forward",
        ),
        _m(
            "saliency",
            "Vanilla gradient",
            "backpropagation",
            "captum",
            True,
            False,
            False,
            "1 forward + 1 backward",
        ),
        _m(
            "input_x_gradient",
            "Input × gradient",
            "backpropagation",
            "captum",
            True,
            False,
            False,
            "1 forward + 1 backward",
        ),
        _m(
            "integrated_gradients",
            "Integrated Gradients",
            "backpropagation",
            "captum",
            True,
            False,
            False,
            "n_steps forward + n_steps backward",
        ),
        _m(
            "ig_noise_tunnel",
            "IG + NoiseTunnel",
            "backpropagation",
            "captum",
            True,
            False,
            False,
            "nt_samples × n_steps forward + backward",
        ),
        _m(
            "smoothgrad",
            "SmoothGrad",
            "backpropagation",
            "captum",
            True,
            False,
            False,
            "nt_samples forward + backward",
        ),
        _m(
            "guided_backprop",
            "Guided Backpropagation",
            "backpropagation",
            "captum",
            True,
            False,
            False,
            "1 forward + 1 modified backward",
        ),
        _m(
            "deconvolution",
            "Deconvolution",
            "backpropagation",
            "captum",
            True,
            False,
            False,
            "1 forward + 1 modified backward",
        ),
        _m(
            "deeplift",
            "DeepLIFT",
            "backpropagation",
            "captum",
            True,
            False,
            False,
            "2 forward (input, baseline) + 1 modified backward",
        ),
        _m(
            "lrp",
            "LRP (ε + z⁺ + flat)",
            "backpropagation",
            "zennit",
            True,
            False,
            False,
            "1 forward + 1 modified backward",
        ),
        _m(
            "guided_gradcam",
            "Guided Grad-CAM",
            "backpropagation",
            "captum",
            True,
            True,
            False,
            "1 forward + 2 backward",
        ),
        _m(
            "gradcam",
            "Grad-CAM",
            "cam",
            "pytorch-grad-cam",
            False,
            True,
            False,
            "1 forward + 1 backward",
        ),
        _m(
            "gradcam++",
            "Grad-CAM++",
            "cam",
            "pytorch-grad-cam",
            False,
            True,
            False,
            "1 forward + 1 backward",
        ),
        _m(
            "xgradcam",
            "XGrad-CAM",
            "cam",
            "pytorch-grad-cam",
            False,
            True,
            False,
            "1 forward + 1 backward",
        ),
        _m(
            "hirescam",
            "HiResCAM",
            "cam",
            "pytorch-grad-cam",
            False,
            True,
            False,
            "1 forward + 1 backward",
        ),
        _m(
            "layercam",
            "LayerCAM",
            "cam",
            "pytorch-grad-cam",
            False,
            True,
            False,
            "1 forward + 1 backward",
        ),
        _m(
            "scorecam",
            "Score-CAM",
            "cam",
            "pytorch-grad-cam",
            False,
            True,
            False,
            "1 + number of channels forward",
        ),
        _m(
            "ablationcam",
            "Ablation-CAM",
            "cam",
            "pytorch-grad-cam",
            False,
            True,
            False,
            "1 + number of channels forward",
        ),
        _m("eigencam", "Eigen-CAM", "cam", "pytorch-grad-cam", False, True, False, "1 forward"),
        _m(
            "fullgrad",
            "FullGrad",
            "cam",
            "pytorch-grad-cam",
            False,
            False,
            False,
            "1 forward + 1 backward",
        ),
    ]
}


def explain(
    method: str,
    model: nn.Module,
    inputs: torch.Tensor,
    target: int | list[int] | torch.Tensor,
    layer: nn.Module | None = None,
    **options: Any,
) -> np.ndarray:
    """Maps (B, H, W) float32 of ``method`` for ``inputs`` (B, C, H, W) and ``target``.

    CAM methods need ``layer`` (the convolutional layer whose activations they weight; FullGrad
    ignores it) and return [0, 1] maps; attribution methods return the signed channel sum.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}'; allowed: {', '.join(METHODS)}")
    if method in CAM_METHODS:
        if layer is None and method != "fullgrad":
            raise ValueError(f"{method} needs layer= (e.g. models.classifiers.target_layer(model))")
        layers = [layer] if layer is not None else []
        return compute_cam(method, model, inputs, target, layers, **options)
    if method == "guided_gradcam":
        options["layer"] = layer
    attr = attribute(method, model, inputs, target, **options)
    return attr.sum(dim=1).cpu().numpy().astype(np.float32)


__all__ = [
    "ATTRIBUTIONS",
    "CAM_METHODS",
    "METHODS",
    "MethodInfo",
    "attribute",
    "compute_cam",
    "explain",
]
