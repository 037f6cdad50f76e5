"""A small U-Net for tissue segmentation, its BCE + Dice loss and a training objective.

``UNet(in_chans, out_chans)`` outputs one logit map per class (multi-label, sigmoid), e.g. a
neoplastic and a non-neoplastic nuclei map as in the thesis chapter. ``ThesisUNet`` is the
smaller U-Net of Valatkaitė's appendix code. Train either with
:func:`xaistudy.models.train.fit` and ``objective=segmentation_objective(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xaistudy.models.train import Objective
from xaistudy.models.transforms import ChannelStandardise


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

    def __init__(
        self,
        in_chans: int = 3,
        out_chans: int = 2,
        base: int = 16,
        depth: int = 4,
        standardise: bool = False,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.standardise = ChannelStandardise() if standardise else nn.Identity()
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
        x = self.standardise(x)
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, conv, skip in zip(self.up, self.up_conv, reversed(skips), strict=True):
            x = conv(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def _thesis_contract(in_chans: int, out_chans: int, kernel: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, kernel, padding=padding),
        nn.BatchNorm2d(out_chans),
        nn.ReLU(),
        nn.Conv2d(out_chans, out_chans, kernel, padding=padding),
        nn.BatchNorm2d(out_chans),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
    )


def _thesis_expand(in_chans: int, out_chans: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, 3, padding=1),
        nn.BatchNorm2d(out_chans),
        nn.ReLU(),
        nn.Conv2d(out_chans, out_chans, 3, padding=1),
        nn.BatchNorm2d(out_chans),
        nn.ReLU(),
        nn.ConvTranspose2d(out_chans, out_chans, 3, stride=2, padding=1, output_padding=1),
    )


class ThesisUNet(nn.Module):
    """The U-Net of the thesis's appendix (``UNET``): three contracting blocks (7x7 then 3x3
    convolutions, each block two conv-BN-ReLU and a 3x3 max-pool of stride 2), three expanding
    blocks ending in a stride-2 transposed convolution, skips by concatenation; the last
    block's output (``out_chans`` maps) is the logit map. ``base`` = 32 in the thesis
    (channels 32, 64, 128). Input sides must be divisible by 8. ``standardise=True`` puts a
    per-tile channel standardisation in front (not in the thesis).
    """

    depth = 3

    def __init__(
        self, in_chans: int = 3, out_chans: int = 2, base: int = 32, standardise: bool = False
    ):
        super().__init__()
        self.standardise = ChannelStandardise() if standardise else nn.Identity()
        self.conv1 = _thesis_contract(in_chans, base, 7, 3)
        self.conv2 = _thesis_contract(base, 2 * base, 3, 1)
        self.conv3 = _thesis_contract(2 * base, 4 * base, 3, 1)
        self.upconv3 = _thesis_expand(4 * base, 2 * base)
        self.upconv2 = _thesis_expand(4 * base, base)
        self.upconv1 = _thesis_expand(2 * base, out_chans)

    @property
    def bottleneck(self) -> nn.Module:
        """The deepest block (the default layer for segmentation CAMs)."""
        return self.conv3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"ThesisUNet needs sides divisible by 8, got {tuple(x.shape[-2:])}")
        c1 = self.conv1(self.standardise(x))
        c2 = self.conv2(c1)
        u3 = self.upconv3(self.conv3(c2))
        u2 = self.upconv2(torch.cat([u3, c2], 1))
        return self.upconv1(torch.cat([u2, c1], 1))


#: the named segmentation architectures: the textbook U-Net and the thesis's
UNET_ARCHITECTURES = ("thesis", "textbook")


def build_unet(
    arch: str,
    in_chans: int = 3,
    out_chans: int = 2,
    base: int = 32,
    depth: int = 3,
    standardise: bool = False,
):
    """``ThesisUNet(in, out, base)`` for ``"thesis"``, ``UNet(in, out, base, depth)`` for
    ``"textbook"``; ``standardise`` puts a per-tile channel standardisation in front."""
    if arch == "thesis":
        return ThesisUNet(in_chans, out_chans, base, standardise=standardise)
    if arch == "textbook":
        return UNet(in_chans, out_chans, base=base, depth=depth, standardise=standardise)
    raise ValueError(f"U-Net architecture must be one of {', '.join(UNET_ARCHITECTURES)}: {arch!r}")


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
