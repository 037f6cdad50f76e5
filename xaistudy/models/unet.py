"""A small U-Net for tissue segmentation, its BCE + Dice loss and a training objective.

``UNet(in_chans, out_chans)`` outputs one logit map per class (multi-label, sigmoid), e.g. a
neoplastic and a non-neoplastic nuclei map as in the thesis chapter. Train it with
:func:`xaistudy.models.train.fit` and ``objective=segmentation_objective(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xaistudy.models.train import Objective


def _double_conv(in_chans: int, out_chans: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_chans),
        nn.ReLU(),
        nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_chans),
        nn.ReLU(),
    )


class UNet(nn.Module):
    """U-Net (Ronneberger et al.) with ``depth`` down/up stages and ``base`` channels at the top.

    Input sides must be divisible by ``2**depth``. ``bottleneck`` is the deepest block (the
    default layer for segmentation CAMs); ``head`` the final 1x1 convolution.
    """

    def __init__(self, in_chans: int = 3, out_chans: int = 2, base: int = 16, depth: int = 4):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        widths = [base * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList(
            [_double_conv(in_chans, widths[0])]
            + [_double_conv(widths[i], widths[i + 1]) for i in range(depth - 1)]
        )
        self.bottleneck = _double_conv(widths[depth - 1], widths[depth])
        self.up = nn.ModuleList(
            [
                nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                for i in reversed(range(depth))
            ]
        )
        self.up_conv = nn.ModuleList(
            [_double_conv(2 * widths[i], widths[i]) for i in reversed(range(depth))]
        )
        self.head = nn.Conv2d(widths[0], out_chans, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2**self.depth or x.shape[-2] % 2**self.depth:
            raise ValueError(
                f"UNet of depth {self.depth} needs sides divisible by {2**self.depth}, "
                f"got {tuple(x.shape[-2:])}"
            )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, conv, skip in zip(self.up, self.up_conv, reversed(skips), strict=True):
            x = conv(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def dice_score(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean soft Dice of ``sigmoid(logits)`` against a binary ``target`` (B, C, H, W)."""
    prob = torch.sigmoid(logits)
    dims = (0, 2, 3)
    inter = (prob * target).sum(dims)
    total = prob.sum(dims) + target.sum(dims)
    return ((2 * inter + eps) / (total + eps)).mean()


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus (1 - soft Dice), the thesis's segmentation loss."""
    target = target.float()
    return F.binary_cross_entropy_with_logits(logits, target) + 1 - dice_score(logits, target)


def iou_score(logits: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> float:
    """Mean IoU over classes of the thresholded prediction (empty-and-empty counts as 1)."""
    pred = torch.sigmoid(logits) > threshold
    target = target > 0.5
    dims = (0, 2, 3)
    inter = (pred & target).sum(dims).float()
    union = (pred | target).sum(dims).float()
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    return float(iou.mean())


def segmentation_objective(target: Callable[[Any], torch.Tensor]) -> Objective:
    """BCE + Dice training, IoU reported, with ``target(batch)`` giving the (B, C, H, W) masks."""

    def batch(b: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return b["image"], target(b)

    return Objective(loss=bce_dice_loss, score=iou_score, batch=batch)


def nuclei_targets(batch: Any) -> torch.Tensor:
    """Neoplastic and non-neoplastic nuclei masks (B, 2, H, W) from a sample batch."""
    types = batch["nuclei_type"]
    return torch.stack([types == 1, types == 2], dim=1).float()
