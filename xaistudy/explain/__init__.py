"""Explanations of image classifiers under one call: ``explain(method, model, inputs, target)``.

``explain`` returns one map per image (B, H, W) at input resolution: CAMs in [0, 1], pixel
attributions as the signed sum over channels (positive = evidence for the target; the
perturbation methods of :data:`CHANNEL_SHARED` perturb all channels of a pixel together, so
their map is that one value per pixel).
:data:`METHODS` describes every method (family, library, whether it is signed, needs a layer,
is model-agnostic, what it costs in forward/backward passes, and its options); each method is
registered with that description where it is defined (:mod:`xaistudy.explain.registry`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from xaistudy.explain.attributions import ATTRIBUTIONS, attribute
from xaistudy.explain.cams import CAM_METHODS, compute_cam
from xaistudy.explain.registry import (
    FAMILIES,
    METHODS,
    MethodInfo,
    check_options,
    get_method,
    method_names,
)

#: methods whose attribution is one value per pixel, repeated over the channels
CHANNEL_SHARED: tuple[str, ...] = tuple(n for n, m in METHODS.items() if m.channel_shared)


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
    ``options`` are the method's own (``METHODS[method].options``); a misspelt or foreign
    option is a one-line error naming it and the method's options.
    """
    info = get_method(method)
    check_options(method, options)
    if info.family == "cam":
        if layer is None and info.needs_layer:
            raise ValueError(f"{method} needs layer= (e.g. models.classifiers.target_layer(model))")
        layers = [layer] if layer is not None else []
        return compute_cam(method, model, inputs, target, layers, **options)
    if info.needs_layer:
        options["layer"] = layer
    attr = attribute(method, model, inputs, target, **options)
    maps = attr[:, 0] if info.channel_shared else attr.sum(dim=1)
    return maps.cpu().numpy().astype(np.float32)


__all__ = [
    "ATTRIBUTIONS",
    "CAM_METHODS",
    "CHANNEL_SHARED",
    "FAMILIES",
    "METHODS",
    "MethodInfo",
    "attribute",
    "compute_cam",
    "explain",
    "get_method",
    "method_names",
]
