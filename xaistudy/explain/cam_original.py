"""The original class activation map (CAM, Zhou et al. 2016) from a GAP + linear head.

For a network that ends in global average pooling and one linear layer, the class score is
``y_c = sum_k w_ck * mean_xy A_k(x, y) + b_c``, so ``M_c(x, y) = sum_k w_ck A_k(x, y)`` says how
much each position adds to ``y_c``. CAM reads ``w_c`` straight from the linear layer; Grad-CAM
reaches the same map through gradients (for this architecture they coincide up to scaling).
The map is post-processed like pytorch-grad-cam's CAMs (ReLU, min-max scaling, resizing), so
it can be compared with them pixel for pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pytorch_grad_cam.utils.image import scale_cam_image
from torch import nn
from torchvision.models import ResNet

from xaistudy.explain.cams import as_targets
from xaistudy.models.classifiers import SmallCNN


def cam_head(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """``(feature module, linear layer)`` of a GAP + linear classifier, or a one-line error."""
    if isinstance(model, SmallCNN):
        return model.features, model.classifier
    if isinstance(model, ResNet):
        return model.layer4, model.fc
    raise ValueError(
        f"CAM needs a global-average-pool + linear head (small_cnn, torchvision ResNet); "
        f"{type(model).__name__} is not supported, use gradcam instead"
    )


@torch.no_grad()
def class_activation_map(
    model: nn.Module,
    inputs: torch.Tensor,
    target: int | Sequence[int] | torch.Tensor,
    raw: bool = False,
) -> np.ndarray:
    """CAM of ``inputs`` (B, C, H, W) for ``target``: float32 (B, H, W).

    Default: ReLU, min-max scaled to [0, 1] and resized to the input. ``raw=True`` returns the
    unscaled map ``sum_k w_ck A_k`` at feature resolution (B, h, w), whose spatial mean plus
    the bias is the class logit.
    """
    features, linear = cam_head(model)
    device = next(model.parameters()).device
    inputs = inputs.to(device)
    targets = as_targets(target, len(inputs))
    captured: list[torch.Tensor] = []
    handle = features.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        model.eval()
        model(inputs)
    finally:
        handle.remove()
    acts = captured[-1]  # (B, K, h, w)
    weights = linear.weight[targets]  # (B, K)
    cam = torch.einsum("bk,bkhw->bhw", weights, acts).float().cpu().numpy()
    if raw:
        return cam.astype(np.float32)
    size = (inputs.shape[-1], inputs.shape[-2])  # cv2 order (width, height)
    # pytorch-grad-cam's steps: per layer ReLU, scale and resize; then ReLU and scale again
    cam = scale_cam_image(np.maximum(cam, 0), size)
    return scale_cam_image(np.maximum(cam, 0)).astype(np.float32)
